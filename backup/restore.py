"""Restore: decrypt the manifest with the private key, write every file's chunks in parallel
pack by pack, then set modes, owners and times (directories last, deepest first)."""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backup import compress, crypto, pack, snapshot
from backup.errors import IntegrityError, StorageError
from backup.index import Index
from backup.storage import io_errors


@dataclass
class RestoreResult:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0


def target_of(target: Path, path: str) -> str:
    return os.path.join(os.fspath(target), path.lstrip("/"))


def select(entries: list[list[Any]], include: Callable[[str], bool] | None) -> list[list[Any]]:
    return entries if include is None else [e for e in entries if include(e[1])]


def restore(root: Path, idx: Index, key: crypto.PrivateKey, manifest: dict[str, Any],
            target: Path, *, include: Callable[[str], bool] | None = None,
            threads: int = 0) -> RestoreResult:
    entries = select(manifest["entries"], include)
    with io_errors("preparing the restore target"):
        target.mkdir(parents=True, exist_ok=True)
        if any(target.iterdir()):
            raise StorageError(f"restore target {target} is not empty; choose an empty folder")
    res = RestoreResult()
    plan: dict[str, list[tuple[pack.Entry, list[tuple[str, int]]]]] = defaultdict(list)
    wanted: dict[bytes, list[tuple[str, int]]] = defaultdict(list)
    with io_errors("creating files in the restore target"):
        for e in entries:
            dest = target_of(target, e[1])
            kind = e[0]
            if kind == snapshot.DIR:
                os.makedirs(dest, exist_ok=True)
                res.dirs += 1
            elif kind == snapshot.LINK:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.symlink(e[8], dest)
                res.symlinks += 1
            elif kind == snapshot.FILE:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
                try:
                    os.ftruncate(fd, e[7])
                finally:
                    os.close(fd)
                res.files += 1
                res.bytes += e[7]
                for off, _length, cid in e[8]:
                    if cid is not None:
                        wanted[bytes.fromhex(cid)].append((dest, off))
    for cid, places in wanted.items():
        found = idx.by_id.get(cid)
        if found is None:
            raise IntegrityError(f"chunk {cid.hex()[:12]} is missing from the index")
        plan[found[0]].append((found[1], places))
    workers = threads or (os.cpu_count() or 2)
    with ThreadPoolExecutor(workers, thread_name_prefix="restore") as ex:
        futures = [ex.submit(_restore_pack, root, pid, idx.packs[pid].groups, items, key)
                   for pid, items in plan.items()]
        for f in futures:
            f.result()
    _set_metadata(entries, target)
    return res




def _restore_pack(root: Path, pack_id: str, groups: list[bytes],
                  items: list[tuple[pack.Entry, list[tuple[str, int]]]],
                  key: crypto.PrivateKey) -> None:
    sealers: dict[int, crypto.Sealer] = {}
    items.sort(key=lambda it: it[0].offset)
    with io_errors(f"reading pack {pack_id[:12]}"), open(pack.pack_path(root, pack_id), "rb") as fh:
        fd = fh.fileno()
        for entry, places in items:
            if entry.group >= len(groups):
                raise IntegrityError(f"pack {pack_id[:12]}: bad key group")
            sealer = sealers.get(entry.group)
            if sealer is None:
                sealer = sealers[entry.group] = crypto.Sealer(
                    crypto.open_group_key(key, groups[entry.group], pack.PURPOSE))
            sealed = os.pread(fd, entry.length, entry.offset)
            if len(sealed) != entry.length:
                raise IntegrityError(f"pack {pack_id[:12]} is truncated")
            data = sealer.open(entry.seq, sealed, pack.blob_aad(entry.id, entry.flags, entry.raw))
            if entry.flags & pack.FLAG_ZSTD:
                data = compress.decompress(data, entry.raw)
            elif len(data) != entry.raw:
                raise IntegrityError(f"pack {pack_id[:12]}: blob has the wrong length")
            for dest, off in places:
                with io_errors("writing restored data"):
                    out = os.open(dest, os.O_WRONLY | os.O_NOFOLLOW)
                    try:
                        view = memoryview(data)
                        pos = off
                        while view:
                            n = os.pwrite(out, view, pos)
                            view, pos = view[n:], pos + n
                    finally:
                        os.close(out)


def _set_metadata(entries: list[list[Any]], target: Path) -> None:
    as_root = os.geteuid() == 0
    with io_errors("setting restored metadata"):
        dirs = []
        for e in entries:
            dest = target_of(target, e[1])
            kind, mode, uid, gid, atime, mtime = e[0], e[2], e[3], e[4], e[5], e[6]
            if kind == snapshot.DIR:
                dirs.append(e)
                continue
            if as_root:
                with contextlib.suppress(OSError):
                    os.lchown(dest, uid, gid)
            if kind == snapshot.FILE:
                os.chmod(dest, mode)
                os.utime(dest, ns=(atime, mtime))
            else:
                os.utime(dest, ns=(atime, mtime), follow_symlinks=False)
        for e in sorted(dirs, key=lambda d: d[1].count("/"), reverse=True):
            dest = target_of(target, e[1])
            if as_root:
                with contextlib.suppress(OSError):
                    os.lchown(dest, e[3], e[4])
            os.chmod(dest, e[2])
            os.utime(dest, ns=(e[5], e[6]))
