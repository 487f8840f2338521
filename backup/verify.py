"""Verify a repository: structure, every pack's hash and every snapshot's pack list without
any key; with the private key (``read_data``) also decrypt and re-hash every blob, open every
snapshot's references and manifest and check its pack list covers them."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from backup import compress, crypto, pack, snapshot
from backup.errors import BackupError, IntegrityError
from backup.index import Index, decode
from backup.repo import Repository
from backup.storage import io_errors, read

HASH_PIECE = 4 * 1024 * 1024


@dataclass
class VerifyReport:
    read_data: bool
    packs: int = 0
    snapshots: int = 0
    blobs: int = 0
    bytes_checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_pack(repo: Repository, pack_id: str, sealed_in_index: bytes | None,
                key: crypto.PrivateKey | None, dedup_key: bytes | None) -> tuple[int, int]:
    """Hash the whole pack in pieces; with the key, also open and re-hash every blob."""
    path = pack.pack_path(repo.root, pack_id)
    h = hashlib.sha256()
    size = 0
    with io_errors(f"reading pack {pack_id[:12]}"), open(path, "rb") as fh:
        while piece := fh.read(HASH_PIECE):
            h.update(piece)
            size += len(piece)
    if h.hexdigest() != pack_id:
        raise IntegrityError(f"pack {pack_id[:12]} does not match its hash (corrupt or truncated)")
    sealed, data_end = pack.read_sealed_trailer(path)
    if sealed_in_index is not None and sealed != sealed_in_index:
        raise IntegrityError(f"pack {pack_id[:12]} disagrees with the index")
    if key is None or dedup_key is None:
        return 0, size
    entries, groups = pack.open_trailer(key, sealed, data_end)
    sealers = [crypto.Sealer(crypto.open_group_key(key, g, pack.PURPOSE)) for g in groups]
    with io_errors(f"reading pack {pack_id[:12]}"), open(path, "rb") as fh:
        for e in entries:
            sealed = os.pread(fh.fileno(), e.length, e.offset)
            plain = sealers[e.group].open(e.seq, sealed, pack.blob_aad(e.id, e.flags, e.raw))
            del sealed
            if e.flags & pack.FLAG_ZSTD:
                plain = compress.decompress(plain, e.raw)
            if len(plain) != e.raw or crypto.chunk_id(dedup_key, plain) != e.id:
                raise IntegrityError(f"pack {pack_id[:12]}: a blob does not match its id")
    return len(entries), size


def _check_snapshot(repo: Repository, name: str, idx: Index, on_disk: set[str],
                    key: crypto.PrivateKey | None) -> None:
    snap = repo.read_snapshot(name)
    if snap.header.repo != repo.id:
        raise IntegrityError(f"snapshot {name[:12]} belongs to another repository")
    missing = [p for p in snap.packs if p not in idx.sealed or p not in on_disk]
    if missing:
        raise IntegrityError(f"snapshot {name[:12]} needs {len(missing)} pack(s) missing "
                             "from the repository or the index")
    if key is None:
        return
    refs = snapshot.open_refs(snap, key)
    used: set[bytes] = set()  # the manifest read one entry at a time, not parsed whole
    for e in snapshot.open_manifest_text(snap, key).entries():
        if e[0] == snapshot.FILE:
            used.update(bytes.fromhex(c[2]) for c in e[8] if c[2] is not None)
    if used != set(refs):
        raise IntegrityError(f"snapshot {name[:12]} manifest disagrees with its references")
    have = {e.id for p in snap.packs if p in idx.packs for e in idx.packs[p].entries}
    if not have.issuperset(refs):
        raise IntegrityError(f"snapshot {name[:12]} uses chunks its pack list does not cover")


def verify(repo_root: os.PathLike[str] | str, key: crypto.PrivateKey | None = None,
           *, threads: int = 0) -> VerifyReport:
    """Check everything; never raises for damage found, it is listed in ``problems``."""
    from pathlib import Path

    root = Path(repo_root)
    t0 = time.monotonic()
    rep = VerifyReport(read_data=key is not None)
    try:
        repo = Repository.open(root)
    except BackupError as exc:
        rep.problems.append(f"config: {exc}")
        rep.duration_s = time.monotonic() - t0
        return rep
    dedup_key = None
    if key is not None:
        dedup_key = repo.unseal_dedup_key(key)  # wrong key: KeyError_ propagates
    idx = Index()
    for name in sorted(os.listdir(root / "index")):
        try:
            for pid, sealed in decode(read(root / "index" / name), name).items():
                idx.add_sealed(pid, sealed)
        except BackupError as exc:
            rep.problems.append(f"index: {exc}")
    if key is not None:
        try:
            idx.unseal(key)
        except BackupError as exc:
            rep.problems.append(f"index: {exc}")
    on_disk = repo.pack_names()
    for pid in sorted(set(idx.sealed) - on_disk):
        rep.problems.append(f"pack {pid[:12]} is in the index but missing")
    orphans = on_disk - set(idx.sealed)
    if orphans:
        rep.notes.append(f"{len(orphans)} pack(s) not in any index (left by an interrupted run;"
                         " prune removes them)")

    def job(pid: str) -> tuple[str, int, int, str | None]:
        try:
            blobs, size = _check_pack(repo, pid, idx.sealed.get(pid), key, dedup_key)
            return pid, blobs, size, None
        except BackupError as exc:
            return pid, 0, 0, str(exc)

    with ThreadPoolExecutor(threads or (os.cpu_count() or 2)) as ex:
        for _pid, blobs, size, err in ex.map(job, sorted(on_disk)):
            rep.packs += 1
            rep.blobs += blobs
            rep.bytes_checked += size
            if err:
                rep.problems.append(err)
    for name in repo.snapshot_names():
        rep.snapshots += 1
        try:
            _check_snapshot(repo, name, idx, on_disk, key)
        except BackupError as exc:
            rep.problems.append(str(exc))
    rep.duration_s = time.monotonic() - t0
    return rep
