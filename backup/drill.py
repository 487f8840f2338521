"""Restore drill: restore a random sample of files from a snapshot into a scratch folder and
compare hashes: every chunk against its keyed id, and the whole file against the live vault
when the vault file is still the same (size and mtime) as in the snapshot."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from backup import crypto, restore, snapshot
from backup.repo import Repository

VAULT_COMPARE_MAX = 1 << 30  # larger files are checked chunk by chunk only


@dataclass
class DrillResult:
    snapshot_id: str
    files_sampled: int = 0
    bytes: int = 0
    compared_with_vault: int = 0
    mismatches: int = 0
    mismatch_paths: list[str] = field(default_factory=list)
    duration_s: float = 0.0


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def drill(repo: Repository, key: crypto.PrivateKey, snapshot_id: str, *, sample: int,
          scratch: Path | None = None, rng: random.Random | None = None) -> DrillResult:
    t0 = time.monotonic()
    rng = rng or random.Random(os.urandom(16))
    dedup_key = repo.unseal_dedup_key(key)
    snap = repo.read_snapshot(snapshot_id)
    manifest = snapshot.open_manifest(snap, key)
    files = [e for e in manifest["entries"] if e[0] == snapshot.FILE]
    chosen = rng.sample(files, min(sample, len(files)))
    chosen_paths = {e[1] for e in chosen}
    res = DrillResult(snapshot_id)
    work = Path(tempfile.mkdtemp(prefix="secroom-drill-", dir=scratch))
    try:
        target = work / "restore"
        restore.restore(repo.root, repo.load_index(), key, manifest, target,
                        include=chosen_paths.__contains__)
        for e in chosen:
            dest = restore.target_of(target, e[1])
            res.files_sampled += 1
            res.bytes += e[7]
            ok = os.path.getsize(dest) == e[7]
            with open(dest, "rb") as fh:
                for off, length, cid in e[8]:
                    if not ok:
                        break
                    fh.seek(off)
                    data = fh.read(length)
                    ok = (data == bytes(length)) if cid is None else (
                        crypto.chunk_id(dedup_key, data).hex() == cid)
            try:
                st = os.stat(e[1])
                if ok and st.st_size == e[7] <= VAULT_COMPARE_MAX and st.st_mtime_ns == e[6]:
                    res.compared_with_vault += 1
                    ok = _sha256(e[1]) == _sha256(dest)
            except OSError:
                pass  # the file is no longer in the vault (or we are off the gateway)
            if not ok:
                res.mismatches += 1
                res.mismatch_paths.append(e[1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res.duration_s = time.monotonic() - t0
    return res
