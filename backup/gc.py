"""Prune (retention) and purge (deletion duty), and the garbage collection both end with.

Garbage collection needs no key: snapshots list their chunk ids in clear text, and repacking
copies sealed blobs as they are (their key groups travel with them). Every blob no snapshot
references is removed from the repository, so expired or purged content is really gone.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime

from backup import crypto, pack, snapshot
from backup.errors import IntegrityError
from backup.index import PackInfo
from backup.repo import Repository
from backup.retention import select_keep
from backup.storage import read, remove


@dataclass
class GcResult:
    snapshots_removed: int = 0
    snapshots_kept: int = 0
    snapshots_changed: list[tuple[str, str]] = field(default_factory=list)
    packs_deleted: int = 0
    packs_rewritten: int = 0
    blobs_removed: int = 0
    bytes_freed: int = 0
    duration_s: float = 0.0


def collect(repo: Repository, res: GcResult, pack_size: int = 16 << 20) -> None:
    """Remove unreferenced blobs and packs. Caller holds the lock."""
    referenced: set[bytes] = set()
    for snap in repo.snapshots():
        referenced.update(snap.refs)
    idx = repo.load_index()
    before = repo.size()
    on_disk = {p.name for d in (repo.root / "packs").iterdir() for p in d.iterdir()}
    keep: dict[str, PackInfo] = {}
    drop: list[str] = sorted(on_disk - set(idx.packs))  # orphans of interrupted runs
    needed = set(referenced)
    writer: pack.PackWriter | None = None
    for pid, info in sorted(idx.packs.items()):
        live = []
        for e in info.entries:
            if e.id in needed:
                needed.discard(e.id)
                live.append(e)
        if len(live) == len(info.entries):
            keep[pid] = info
            continue
        res.blobs_removed += len(info.entries) - len(live)
        drop.append(pid)
        if not live:
            continue
        res.packs_rewritten += 1
        data = read(pack.pack_path(repo.root, pid))
        for e in live:
            if writer is None:
                writer = pack.PackWriter(repo.root, None)
            writer.add_sealed(e, info.groups[e.group], data[e.offset:e.offset + e.length])
            if writer.size >= pack_size:
                new_id, _ = writer.finish()
                keep[new_id] = PackInfo(writer.groups, writer.entries)
                writer = None
    if writer is not None:
        new_id, _ = writer.finish()
        keep[new_id] = PackInfo(writer.groups, writer.entries)
    if needed:
        raise IntegrityError(f"{len(needed)} referenced chunk(s) are missing from the index; "
                             "run `backup verify` before pruning")
    # order: new packs (done) -> new index -> old index files -> old packs
    new_index = repo.write_index(keep) if keep else None
    for name in idx.files:
        if name != new_index:
            remove(repo.root / "index" / name)
    for pid in drop:
        if pid not in keep:
            remove(pack.pack_path(repo.root, pid))
            res.packs_deleted += 1
    res.bytes_freed = max(0, before - repo.size())


def prune(repo: Repository, *, daily: int, weekly: int, monthly: int, tz: str) -> GcResult:
    t0 = time.monotonic()
    res = GcResult()
    snaps = repo.snapshots()
    times = [(s.header.id, datetime.fromisoformat(s.header.time)) for s in snaps]
    keep = select_keep(times, daily=daily, weekly=weekly, monthly=monthly, tz=tz)
    for s in snaps:
        if s.header.id not in keep:
            remove(repo.root / "snapshots" / s.header.id)
            res.snapshots_removed += 1
    res.snapshots_kept = len(keep)
    collect(repo, res)
    res.duration_s = time.monotonic() - t0
    return res


def _under(path: str, target: str) -> bool:
    return path == target or path.startswith(target.rstrip("/") + "/")


def purge(repo: Repository, key: crypto.PrivateKey, path: str) -> GcResult:
    """Remove ``path`` (a file or a whole folder, absolute as backed up) from every snapshot."""
    t0 = time.monotonic()
    res = GcResult()
    repo.check_private_key(key)
    target = os.path.normpath(path)
    for snap in repo.snapshots():
        manifest = snapshot.open_manifest(snap, key)
        entries = manifest["entries"]
        kept = [e for e in entries if not _under(e[1], target)]
        if len(kept) == len(entries):
            res.snapshots_kept += 1
            continue
        manifest["entries"] = kept
        header = {"time": snap.header.time, "host": snap.header.host, "repo": snap.header.repo,
                  "files": sum(1 for e in kept if e[0] == snapshot.FILE),
                  "bytes": sum(e[7] for e in kept if e[0] == snapshot.FILE)}
        refs = list(snapshot.manifest_refs(manifest))
        new_id = repo.write_snapshot(snapshot.encode(header, refs, manifest, repo.public_key))
        remove(repo.root / "snapshots" / snap.header.id)
        res.snapshots_changed.append((snap.header.id, new_id))
    collect(repo, res)
    res.duration_s = time.monotonic() - t0
    return res


