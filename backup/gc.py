"""Prune (retention) and purge (deletion duty), and the garbage collection both end with.

Without a key (the gateway's nightly prune) collection works on whole packs: every snapshot
lists the packs it needs in clear, and a pack no snapshot lists is removed. Blobs that are
dead inside a pack still in use stay until a collection with the operators' private key
(`prune --key`, and always `purge`), which opens the sealed chunk references and trailers,
copies the live sealed blobs of partly used packs into new packs (without decrypting them:
their key groups travel with them) and rewrites the pack lists of the snapshots concerned in
place (their ids do not change). Every blob no snapshot references is then gone.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime

from backup import crypto, pack, snapshot
from backup.errors import IntegrityError
from backup.index import Index
from backup.repo import Repository
from backup.retention import select_keep
from backup.storage import read, remove, write_atomic


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


def _index_with_listed(repo: Repository, snaps: list[snapshot.SnapshotFile],
                       on_disk: set[str]) -> Index:
    """The index, plus the trailer of any pack a snapshot lists that no index file does."""
    idx = repo.load_index()
    for snap in snaps:
        for pid in snap.packs:
            if pid not in on_disk:
                raise IntegrityError(f"snapshot {snap.header.id[:12]} needs pack {pid[:12]}, "
                                     "which is missing; run `backup verify` before pruning")
            if pid not in idx.sealed:
                idx.add_sealed(pid, pack.read_sealed_trailer(pack.pack_path(repo.root, pid))[0])
    return idx


def collect(repo: Repository, res: GcResult, key: crypto.PrivateKey | None = None,
            pack_size: int = 16 << 20) -> None:
    """Remove unreferenced packs (and, with the key, unreferenced blobs). Caller holds the
    lock. Order: new packs -> new index -> snapshots' pack lists -> old index files -> old
    packs, so a kill at any point leaves every snapshot's packs in place."""
    snaps = repo.snapshots()
    before = repo.size()
    on_disk = repo.pack_names()
    idx = _index_with_listed(repo, snaps, on_disk)
    if key is None:
        keep = {pid: idx.sealed[pid] for snap in snaps for pid in snap.packs}
        relisted: dict[str, bytes] = {}
    else:
        keep, relisted = _repack(repo, res, key, snaps, idx.unseal(key), pack_size)
    new_index = repo.write_index(keep) if keep else None
    for name, data in relisted.items():
        write_atomic(repo.root / "snapshots" / name, data, repo.root / "tmp")
    for name in idx.files:
        if name != new_index:
            remove(repo.root / "index" / name)
    for pid in sorted(on_disk - set(keep)):
        remove(pack.pack_path(repo.root, pid))
        res.packs_deleted += 1
    res.bytes_freed = max(0, before - repo.size())


def _repack(repo: Repository, res: GcResult, key: crypto.PrivateKey,
            snaps: list[snapshot.SnapshotFile], idx: Index, pack_size: int
            ) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Keep live blobs only: (pack id -> sealed trailer of every pack kept or written,
    snapshot name -> new file content for snapshots whose pack list changed)."""
    needed: set[bytes] = set()
    newest: dict[str, str] = {}  # pack -> time of the newest snapshot listing it
    for snap in snaps:
        needed.update(snapshot.open_refs(snap, key))
        for pid in snap.packs:
            newest[pid] = max(newest.get(pid, ""), snap.header.time)
    # a chunk stored twice (a gateway that lost its cache uploads again) keeps the copy the
    # newest snapshots use: that is the one the gateway's cache knows
    order = sorted(idx.packs, key=lambda p: (newest.get(p, ""), p), reverse=True)
    keep: dict[str, bytes] = {}
    place: dict[bytes, str] = {}
    writer: pack.PackWriter | None = None

    def finish(w: pack.PackWriter) -> None:
        new_id, _ = w.finish()
        keep[new_id] = w.sealed_trailer
        place.update((e.id, new_id) for e in w.entries)

    for pid in order:
        info = idx.packs[pid]
        live = [e for e in info.entries if e.id in needed and e.id not in place]
        if len(live) == len(info.entries):
            keep[pid] = idx.sealed[pid]
            place.update((e.id, pid) for e in live)
            continue
        res.blobs_removed += len(info.entries) - len(live)
        if not live:
            continue
        res.packs_rewritten += 1
        data = read(pack.pack_path(repo.root, pid))
        for e in live:
            if writer is None:
                writer = pack.PackWriter(repo.root, repo.public_key, own_group=False)
            writer.add_sealed(e, info.groups[e.group], data[e.offset:e.offset + e.length])
            place[e.id] = "(pending)"
            if writer.size >= pack_size:
                finish(writer)
                writer = None
    if writer is not None:
        finish(writer)
    missing = needed - place.keys()
    if missing:
        raise IntegrityError(f"{len(missing)} referenced chunk(s) are missing from the index; "
                             "run `backup verify` before pruning")
    relisted = {}
    for snap in snaps:
        packs = sorted({place[r] for r in snapshot.open_refs(snap, key)})
        if packs != snap.packs:
            relisted[snap.header.id] = snapshot.with_packs(snap, packs)
    return keep, relisted


def prune(repo: Repository, *, daily: int, weekly: int, monthly: int, tz: str,
          key: crypto.PrivateKey | None = None) -> GcResult:
    t0 = time.monotonic()
    res = GcResult()
    snaps = repo.snapshots()
    keep: set[str] = set()
    for tag in {s.header.tag for s in snaps}:  # each series (the vault, the dashboard's
        times = [(s.header.id, datetime.fromisoformat(s.header.time))  # database) on its own
                 for s in snaps if s.header.tag == tag]
        keep |= select_keep(times, daily=daily, weekly=weekly, monthly=monthly, tz=tz)
    if not snaps:
        select_keep([], daily=daily, weekly=weekly, monthly=monthly, tz=tz)  # checks the counts
    if key is not None:
        repo.check_private_key(key)
    for s in snaps:
        if s.header.id not in keep:
            remove(repo.root / "snapshots" / s.header.id)
            res.snapshots_removed += 1
    res.snapshots_kept = len(keep)
    collect(repo, res, key)
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
        if snap.header.tag is not None:
            header["tag"] = snap.header.tag
        # the old pack list still covers every kept chunk; collect() narrows it
        new_id = repo.write_snapshot(
            snapshot.encode(header, manifest, repo.public_key, snap.packs))
        remove(repo.root / "snapshots" / snap.header.id)
        res.snapshots_changed.append((snap.header.id, new_id))
    collect(repo, res, key)
    res.duration_s = time.monotonic() - t0
    return res
