"""Restore: decrypt the manifest with the private key, write every file's chunks in parallel
pack by pack; the worker that writes a file's last chunk also sets its size, owner, mode and
times through the same descriptor. Directories get their metadata last, deepest first.

Setuid and setgid bits are dropped unless ``keep_special_bits`` (a snapshot can be sealed by
anyone with the public key: a restore as root must not plant a setuid-root program), and an
existing target folder keeps its own mode, owner and times (only one the restore created takes
the metadata of a snapshot entry for "/")."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backup import compress, crypto, pack, snapshot
from backup.errors import IntegrityError, StorageError
from backup.index import Index
from backup.storage import io_errors

AS_ROOT = os.geteuid() == 0
SPECIAL = stat.S_ISUID | stat.S_ISGID


@dataclass
class RestoreResult:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0


class _File:
    __slots__ = ("dest", "entry", "remaining", "lock")

    def __init__(self, dest: str, entry: list[Any], remaining: int) -> None:
        self.dest, self.entry, self.remaining = dest, entry, remaining
        self.lock = threading.Lock()


def target_of(target: Path, path: str) -> str:
    return os.path.join(os.fspath(target), path.lstrip("/"))


def check_paths(entries: Iterable[list[Any]]) -> None:
    """Refuse a manifest that would write outside the target: anyone holding the public key
    can seal a snapshot, so its paths are untrusted. No '..', '.' or empty component, no NUL,
    and no entry below (or replacing) a symlink the same restore creates."""
    entries = list(entries)
    links = _links(entries)
    for e in entries:
        _check_path(e, links)


def _links(entries: Iterable[list[Any]]) -> set[str]:
    return {e[1].lstrip("/") for e in entries
            if e[0] == snapshot.LINK and isinstance(e[1], str)}


def _check_path(e: list[Any], links: set[str]) -> None:
    rel = e[1].lstrip("/") if isinstance(e[1], str) else None
    parts = rel.split("/") if rel else []
    if rel is None or "\0" in rel or any(p in ("", ".", "..") for p in parts) or (
            not parts and e[0] != snapshot.DIR):
        raise IntegrityError(f"snapshot entry {e[1]!r} escapes the restore target",
                             public="snapshot holds a path outside the restore target")
    below = ("/".join(parts[:i]) for i in range(1, len(parts) + (e[0] != snapshot.LINK)))
    if any(p in links for p in below):
        raise IntegrityError(f"snapshot entry {e[1]!r} lies through a restored symlink",
                             public="snapshot holds a path through a symlink")


def _finish_file(fd: int, entry: list[Any]) -> None:
    """Size (trailing holes), owner, mode and times of a restored file, via its descriptor."""
    if os.fstat(fd).st_size != entry[7]:
        os.ftruncate(fd, entry[7])
    if AS_ROOT:
        with contextlib.suppress(OSError):
            os.fchown(fd, entry[3], entry[4])
    os.fchmod(fd, entry[2])
    os.utime(fd, ns=(entry[5], entry[6]))


#: files whose chunks are fetched together (pack by pack, in parallel) before the next ones
#: are read from the manifest: bounds what a restore holds, whatever the vault's size
BATCH_FILES = 4096


def restore(root: Path, idx: Index, key: crypto.PrivateKey,
            manifest: dict[str, Any] | snapshot.ManifestText, target: Path, *,
            include: Callable[[str], bool] | None = None,
            threads: int = 0, keep_special_bits: bool = False) -> RestoreResult:
    """Restore ``manifest`` (parsed, or as text: see snapshot.open_manifest_text) into the
    empty folder ``target``. The manifest is read twice, one entry at a time: once to check
    every path (and find the symlinks it creates), once to restore, BATCH_FILES at a time."""

    def entries() -> Iterator[list[Any]]:
        it = iter(manifest["entries"]) if isinstance(manifest, dict) else manifest.entries()
        for e in it:
            if include is None or include(e[1]):
                yield e if keep_special_bits or not e[2] & SPECIAL else [
                    *e[:2], e[2] & ~SPECIAL, *e[3:]]

    links_at = _links(entries())
    folders: dict[str, None] = {}  # every folder the restore makes, parents first
    for e in entries():
        _check_path(e, links_at)
        dest = target_of(target, e[1])
        folders[dest if e[0] == snapshot.DIR else os.path.dirname(dest)] = None
    idx.unseal(key)
    with io_errors("preparing the restore target"):
        created = not os.path.lexists(target)
        target.mkdir(parents=True, exist_ok=True)
        if any(target.iterdir()):
            raise StorageError(f"restore target {target} is not empty; choose an empty folder")
        # all folders before any file, as restic does: made one by one between the files,
        # they cost ext4 without a journal up to 4x the system time of the restore right after
        # a large delete (its inode allocator steps over recently deleted inodes)
        for folder in folders:
            os.makedirs(folder, exist_ok=True)
        del folders
    res = RestoreResult()
    batch: list[tuple[_File, list[list[Any]]]] = []  # files with data, in manifest order
    links: list[list[Any]] = []
    dirs: list[list[Any]] = []
    workers = threads or (os.cpu_count() or 2)
    with ThreadPoolExecutor(workers, thread_name_prefix="restore") as ex:
        with io_errors("creating files in the restore target"):
            for e in entries():
                dest = target_of(target, e[1])
                kind = e[0]
                if kind == snapshot.DIR:
                    res.dirs += 1
                    # the target itself ("/" in the snapshot) keeps its metadata unless we made it
                    if created or e[1].strip("/"):
                        dirs.append(e)
                    continue
                if kind == snapshot.LINK:
                    os.symlink(e[8], dest)
                    links.append(e)
                    res.symlinks += 1
                elif kind == snapshot.FILE:
                    res.files += 1
                    res.bytes += e[7]
                    data = [c for c in e[8] if c[2] is not None]
                    if not data:  # empty, or only holes
                        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                     0o600)
                        try:
                            _finish_file(fd, e)
                        finally:
                            os.close(fd)
                        continue
                    batch.append((_File(dest, e, len(data)), data))
                    if len(batch) >= BATCH_FILES:
                        _fetch(ex, workers, root, idx, key, batch)
                        batch = []
        _fetch(ex, workers, root, idx, key, batch)
    with io_errors("setting restored metadata"):
        for e in links:
            dest = target_of(target, e[1])
            if AS_ROOT:
                with contextlib.suppress(OSError):
                    os.lchown(dest, e[3], e[4])
            os.utime(dest, ns=(e[5], e[6]), follow_symlinks=False)
        for e in sorted(dirs, key=lambda d: d[1].count("/"), reverse=True):
            dest = target_of(target, e[1])
            if AS_ROOT:
                with contextlib.suppress(OSError):
                    os.lchown(dest, e[3], e[4])
            os.chmod(dest, e[2])
            os.utime(dest, ns=(e[5], e[6]))
    return res


def _fetch(ex: ThreadPoolExecutor, workers: int, root: Path, idx: Index,
           key: crypto.PrivateKey, batch: list[tuple[_File, list[list[Any]]]]) -> None:
    """Write the chunks of ``batch``: each worker takes a run of consecutive files (so workers
    create files in different folders and do not queue on one folder's lock) and reads their
    chunks pack by pack, in offset order."""
    step = -(-len(batch) // workers) if batch else 0
    futures = []
    for start in range(0, len(batch), step or 1):
        wanted: dict[bytes, list[tuple[_File, int]]] = defaultdict(list)
        for state, data in batch[start:start + step]:
            for off, _length, cid in data:
                wanted[bytes.fromhex(cid)].append((state, off))
        plan: dict[str, list[tuple[pack.Entry, list[tuple[_File, int]]]]] = defaultdict(list)
        for cid, places in wanted.items():
            found = idx.by_id.get(cid)
            if found is None:
                raise IntegrityError(f"chunk {cid.hex()[:12]} is missing from the index")
            plan[found[0]].append((found[1], places))
        futures.append(ex.submit(_restore_run, root, idx, plan, key))
    for f in futures:
        f.result()


def _restore_run(root: Path, idx: Index,
                 plan: dict[str, list[tuple[pack.Entry, list[tuple[_File, int]]]]],
                 key: crypto.PrivateKey) -> None:
    for pid, items in plan.items():
        _restore_pack(root, pid, idx.packs[pid].groups, items, key)


def _restore_pack(root: Path, pack_id: str, groups: list[bytes],
                  items: list[tuple[pack.Entry, list[tuple[_File, int]]]],
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
            del sealed
            if entry.flags & pack.FLAG_ZSTD:
                data = compress.decompress(data, entry.raw)
            elif len(data) != entry.raw:
                raise IntegrityError(f"pack {pack_id[:12]}: blob has the wrong length")
            for state, off in places:
                _write(state, off, data)


def _write(state: _File, off: int, data: bytes) -> None:
    with io_errors("writing restored data"):
        out = os.open(state.dest, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            view = memoryview(data)
            pos = off
            while view:
                n = os.pwrite(out, view, pos)
                view, pos = view[n:], pos + n
            with state.lock:
                state.remaining -= 1
                last = state.remaining == 0
            if last:
                _finish_file(out, state.entry)
        finally:
            os.close(out)
