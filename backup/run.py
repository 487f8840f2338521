"""One backup run: walk the vault, reuse unchanged files from the cache, chunk and upload the
rest, then write index, snapshot and cache in that order (see FORMAT.md, "Write order").

The gateway deduplicates only against its own cache (chunk id -> pack), since the repository
holds chunk ids sealed: chunks whose pack is gone from the repository are forgotten first."""

from __future__ import annotations

import errno
import os
import socket
import stat
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from backup import cache, crypto, snapshot
from backup.chunker import MIN_SIZE, Chunker
from backup.errors import IntegrityError, StorageError
from backup.repo import Repository
from backup.storage import io_errors
from backup.uploader import Result, SmallFile, Uploader
from backup.walk import WalkErrors, data_extents, walk

SEGMENT = 4 * 1024 * 1024
CHECKPOINT_PACKS = 16

Pending = list[tuple[int, int, Future[list[Result]], int]]


@dataclass
class RunOptions:
    vault_paths: list[Path]
    public_key: bytes
    dedup_key: bytes
    cache_dir: Path
    excludes: list[str] = field(default_factory=list)
    threads: int = 0
    pack_size: int = 16 << 20
    level: int = 3
    tag: str | None = None  # the snapshot's series (FORMAT.md, snapshot header); None: vault


@dataclass
class RunResult:
    snapshot_id: str
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    bytes_total: int = 0
    bytes_read: int = 0
    bytes_new: int = 0
    bytes_stored: int = 0
    skipped: int = 0
    skipped_paths: list[str] = field(default_factory=list)
    duration_s: float = 0.0


def _read_file(path: str, st: os.stat_result, chunker: Chunker, up: Uploader,
               res: RunResult) -> tuple[int, Pending]:
    """Chunk one file; returns (its size, pending chunk results). Holes are not read."""
    pending: Pending = []
    try:  # O_NOATIME: a backup does not disturb the vault's access times (owner or root only)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOATIME)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        size = st.st_size
        for start, end in data_extents(fd, size, st):
            carry = b""
            pos = start
            while True:
                want = min(SEGMENT, end - pos)
                fresh = os.pread(fd, want, pos)
                pos += len(fresh)
                res.bytes_read += len(fresh)
                shrank = len(fresh) < want
                eof = shrank or pos >= end
                buf = carry + fresh if carry else fresh
                if not buf:
                    break
                base = pos - len(buf)
                cuts = list(chunker.cut(buf))
                keep = cuts if eof else cuts[:-1]
                if len(keep) == 1 and keep[0][1] == len(buf):
                    pieces = [buf]  # a small file: one chunk, no copy
                else:
                    view = memoryview(buf)
                    pieces = [bytes(view[off:off + length]) for off, length in keep]
                    del view
                carry = b"" if eof else buf[cuts[-1][0]:]
                del buf, fresh  # free the segment before waiting for room in the pipeline
                for (off, length), piece in zip(keep, pieces, strict=True):
                    fut, i = up.add(piece)
                    pending.append((base + off, length, fut, i))
                del pieces
                if eof:
                    break
            if shrank:  # the file was truncated while we read it: keep what was there
                return pos, pending
        return size, pending
    finally:
        os.close(fd)


def _all_known(chunks: list[list[Any]], known: cache.Chunks) -> bool:
    for c in chunks:  # noqa: SIM110 - a plain loop: this runs once per unchanged file
        if c[2] is not None and c[2] not in known:
            return False
    return True


def backup(repo: Repository, opts: RunOptions, now: datetime) -> RunResult:
    """Write one snapshot. The caller holds the repository lock."""
    t0 = time.monotonic()
    old_cache, cached = cache.load_state(opts.cache_dir, repo.id)
    known = _still_stored(repo, cached)  # cache entries are trusted only if stored
    if len(known) < len(cached):  # packs were purged or pruned: forget them now, even if
        cache.save(opts.cache_dir, repo.id,  # this run fails below
                   {t: e for t, e in old_cache.items() if _all_known(e[4], known)}, known)
    for root in opts.vault_paths:
        if not os.path.isdir(root):
            raise StorageError(f"vault path {root} is missing or not a folder; nothing was "
                               "backed up (check the mount and the config)",
                               public="a vault path is missing")
    new_cache: cache.CacheEntries = {}
    chunker = Chunker(opts.dedup_key)
    threads = opts.threads or (os.cpu_count() or 2)
    up = Uploader(repo.root, known, opts.dedup_key, opts.public_key, threads=threads,
                  pack_size=opts.pack_size, level=opts.level)
    written: cache.Chunks = {}  # chunk id -> pack of every chunk this run stored
    checkpoint = _Checkpoint(repo, opts, old_cache, known, written)
    res = RunResult(snapshot_id="")
    errors = WalkErrors()
    entries: list[list[Any]] = []
    waiting: list[tuple[list[Any], str, list[Any], Pending]] = []
    try:
        for item in walk(opts.vault_paths, opts.excludes, errors):
            st, path = item.st, item.path
            meta = [path, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                    st.st_atime_ns, st.st_mtime_ns]
            if stat.S_ISDIR(st.st_mode):
                res.dirs += 1
                entries.append([snapshot.DIR, *meta, 0, None])
            elif stat.S_ISLNK(st.st_mode):
                res.symlinks += 1
                try:
                    target = os.readlink(path)
                except OSError as exc:
                    errors.add(path, exc)
                    continue
                entries.append([snapshot.LINK, *meta, 0, target])
            elif stat.S_ISREG(st.st_mode):
                tag = crypto.keyed_tag(opts.dedup_key, path)
                key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
                hit = old_cache.get(tag)
                if hit is not None and hit[:4] == key and _all_known(hit[4], known):
                    entry = [snapshot.FILE, *meta, st.st_size, hit[4]]
                    entries.append(entry)
                    new_cache[tag] = hit
                    res.files_unchanged += 1
                    res.files += 1
                    res.bytes_total += st.st_size
                    continue
                try:
                    if 0 < st.st_size <= MIN_SIZE:  # one chunk: a worker reads it
                        fut, i = up.add(SmallFile(path, st.st_size))
                        size, pending = st.st_size, [(0, -1, fut, i)]
                        res.bytes_read += size
                    else:
                        size, pending = _read_file(path, st, chunker, up, res)
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise
                    errors.add(path, exc)
                    continue
                entry = [snapshot.FILE, *meta, size, None]
                entries.append(entry)
                waiting.append((entry, tag, key, pending))
                res.files += 1
                res.bytes_total += size
                if hit is None:
                    res.files_new += 1
                else:
                    res.files_changed += 1
            else:
                continue  # sockets, fifos, devices are not vault data
            if len(up.new_packs) >= CHECKPOINT_PACKS:
                checkpoint(up)
        up.close()
        checkpoint(up)
    except BaseException:
        up.abort()
        raise
    unreadable: set[int] = set()
    for entry, tag, key, pending in waiting:
        chunks = []
        for off, length, fut, i in pending:
            got = fut.result()[i]
            if length == -1:  # a small file read by a worker
                if isinstance(got, OSError):
                    errors.add(entry[1], got)
                    unreadable.add(id(entry))
                    res.bytes_total -= entry[7]
                    break
                assert isinstance(got, tuple)
                got, length = got
                res.bytes_read += length - entry[7]
                res.bytes_total += length - entry[7]
                entry[7] = length
                if not length:
                    break
            assert got is None or isinstance(got, bytes)
            chunks.append([off, length, None if got is None else got.hex()])
        entry[8] = chunks
        if entry[7] == key[0] and id(entry) not in unreadable:
            new_cache[tag] = [*key, chunks]
    if unreadable:
        entries = [e for e in entries if id(e) not in unreadable]
        res.files -= len(unreadable)
    chunks: cache.Chunks = {}  # what this snapshot uses, and where: the next run's cache
    for entry in entries:
        if entry[0] == snapshot.FILE:
            for c in entry[8]:
                if c[2] is not None and c[2] not in chunks:
                    pack_id = written.get(c[2]) or known.get(c[2])
                    if pack_id is None:
                        raise IntegrityError("a chunk of this run has no pack (a bug); "
                                             "nothing was published")
                    chunks[c[2]] = pack_id
    res.files_removed = sum(1 for t in old_cache if t not in new_cache)
    res.bytes_new, res.bytes_stored = up.bytes_new, up.bytes_stored
    res.skipped = errors.count
    res.skipped_paths = errors.paths or []
    header = {"time": now.isoformat(timespec="microseconds"), "host": socket.gethostname(),
              "files": res.files, "bytes": res.bytes_total, "repo": repo.id}
    if opts.tag is not None:
        header["tag"] = opts.tag
    manifest = {"v": 1, "paths": [os.path.abspath(p) for p in opts.vault_paths],
                "entries": entries}
    data = snapshot.encode(header, manifest, opts.public_key, set(chunks.values()))
    res.snapshot_id = repo.write_snapshot(data)
    try:
        cache.save(opts.cache_dir, repo.id, new_cache, chunks)
    except StorageError:
        cache.drop(opts.cache_dir, repo.id)  # the snapshot is safe; the next run reads all
        raise
    res.duration_s = time.monotonic() - t0
    return res


def _still_stored(repo: Repository, known: cache.Chunks) -> cache.Chunks:
    """The cached chunks whose pack is still in the repository and indexed. A pack's content
    never changes (its name is its SHA-256), so its chunks are there as long as it is."""
    if not known:
        return known
    present = repo.pack_names() & set(repo.load_index().sealed)
    return {cid: pack_id for cid, pack_id in known.items() if pack_id in present}


@dataclass
class _Checkpoint:
    """Index the packs written so far and save a cache that knows them, so a run killed after
    this point is resumed by the next one without uploading those chunks again."""

    repo: Repository
    opts: RunOptions
    old_cache: cache.CacheEntries
    known: cache.Chunks
    written: cache.Chunks

    def __call__(self, up: Uploader) -> None:
        packs = up.take_new_packs()
        if not packs:
            return
        with io_errors("writing the index"):
            self.repo.write_index({pid: info.sealed for pid, info in packs.items()})
        for pid, info in packs.items():
            self.written.update((e.id.hex(), pid) for e in info.entries)
        entries = {t: e for t, e in self.old_cache.items() if _all_known(e[4], self.known)}
        cache.save(self.opts.cache_dir, self.repo.id, entries, {**self.known, **self.written})
