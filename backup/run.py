"""One backup run: walk the vault, reuse unchanged files from the cache, chunk and upload the
rest, then write index, snapshot and cache in that order (see FORMAT.md, "Write order").

The gateway deduplicates only against its own cache (chunk id -> pack), since the repository
holds chunk ids sealed: chunks whose pack is gone from the repository are forgotten first."""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import time
from collections import deque
from collections.abc import Callable
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
QUEUE_MAX = 2048  # walked entries waiting for chunk results before the walk waits for them
DRAIN_EVERY = 32  # walked entries between two looks at the oldest one's chunk results

Pending = list[tuple[int, int, Future[list[Result]], int]]


@dataclass
class RunOptions:
    vault_paths: list[Path]
    public_key: bytes
    dedup_key: bytes
    cache_dir: Path
    excludes: list[str] = field(default_factory=list)
    threads: int = 0
    small_file_workers: int = 1  # backup.config.BackupConfig.small_file_workers
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


def _text_known(text: str, known: cache.Chunks) -> bool:
    return _all_known(json.loads(text)[4], known)


@dataclass
class _Item:
    """A walked entry on its way into the manifest and the next cache, in walk order."""

    entry: list[Any]
    tag: str | None = None
    key: list[int] | None = None
    pending: Pending | None = None  # chunk results still to come
    cached: str | None = None  # the old cache's text, for an unchanged file


@dataclass
class _Out:
    """What the run writes as it goes: the compressed manifest (its writer also collects the
    chunk ids the snapshot uses) and the next cache's entries. Entries wait in ``queue`` only
    until their chunk results are in (the uploader bounds the bytes in flight), so memory does
    not grow with the vault."""

    manifest: snapshot.ManifestWriter
    next_cache: cache.Writer
    flush: Callable[[], None]  # the uploader's: submit its open batch
    res: RunResult
    errors: WalkErrors
    old_cache: cache.CompactEntries
    queue: deque[_Item] = field(default_factory=deque)
    kept: int = 0  # files of the old cache also in the next one
    _puts: int = 0
    _done: Future[list[Result]] | None = None  # the last batch seen finished

    def put(self, item: _Item) -> None:
        self.queue.append(item)
        self._puts += 1
        if not self._puts % DRAIN_EVERY:
            self.drain()
        if len(self.queue) > QUEUE_MAX:  # e.g. unchanged files behind a changed one whose
            self.flush()  # batch is not full yet: send that batch, wait for the oldest results
            while len(self.queue) > QUEUE_MAX // 2:
                self._finish(self.queue.popleft())

    def drain(self, final: bool = False) -> None:
        q = self.queue
        done = self._done  # entries of one batch share its future: ask it once
        try:
            while q:
                pending = q[0].pending
                if pending and not final:
                    for p in pending:
                        if p[2] is not done:
                            if not p[2].done():
                                return
                            done = p[2]
                self._finish(q.popleft())
        finally:
            self._done = done

    def _finish(self, item: _Item) -> None:
        entry = item.entry
        if item.pending is not None:
            chunks = self._chunks(entry, item.pending)
            if chunks is None:  # unreadable: counted and named, not in the snapshot
                self.res.files -= 1
                return
            entry[8] = chunks
            if entry[7] == item.key[0]:  # type: ignore[index]
                self._cache(item.tag, [*item.key, chunks])  # type: ignore[misc]
        else:
            if item.cached is not None:
                self._cache(item.tag, item.cached)
        self.manifest.add(entry)

    def _cache(self, tag: str | None, value: str | list[Any]) -> None:
        assert tag is not None
        self.next_cache.add(tag, value)
        if tag in self.old_cache:
            self.kept += 1

    def _chunks(self, entry: list[Any], pending: Pending) -> list[list[Any]] | None:
        chunks = []
        for off, length, fut, i in pending:
            got = fut.result()[i]
            if length == -1:  # a small file read by a worker
                if isinstance(got, OSError):
                    self.errors.add(entry[1], got)
                    self.res.bytes_total -= entry[7]
                    return None
                assert isinstance(got, tuple)
                got, length = got
                self.res.bytes_read += length - entry[7]
                self.res.bytes_total += length - entry[7]
                entry[7] = length
                if not length:
                    break
            assert got is None or isinstance(got, bytes)
            chunks.append([off, length, None if got is None else got.hex()])
        return chunks


def backup(repo: Repository, opts: RunOptions, now: datetime) -> RunResult:
    """Write one snapshot. The caller holds the repository lock."""
    t0 = time.monotonic()
    old_cache, cached = cache.load_compact(opts.cache_dir, repo.id)
    known = _still_stored(repo, cached)  # cache entries are trusted only if stored
    if len(known) < len(cached):  # packs were purged or pruned: forget them now, even if
        cache.save(opts.cache_dir, repo.id,  # this run fails below
                   {t: e for t, e in old_cache.items() if _text_known(e, known)}, known)
    for root in opts.vault_paths:
        if not os.path.isdir(root):
            raise StorageError(f"vault path {root} is missing or not a folder; nothing was "
                               "backed up (check the mount and the config)",
                               public="a vault path is missing")
    chunker = Chunker(opts.dedup_key)
    threads = opts.threads or (os.cpu_count() or 2)
    # small-chunk worker processes ([backup] small_file_workers, default 1): two keep two cores
    # busy with the walking thread on a vault of tiny files, one costs about 20 MB less; more
    # do not help, as the walk is then the slowest part
    up = Uploader(repo.root, known, opts.dedup_key, opts.public_key, threads=threads,
                  pack_size=opts.pack_size, level=opts.level,
                  workers=min(opts.small_file_workers, threads))
    written: dict[bytes, str] = {}  # chunk id -> pack of every chunk this run stored
    checkpoint = _Checkpoint(repo, opts, old_cache, known, written)
    res = RunResult(snapshot_id="")
    errors = WalkErrors()
    out = _Out(snapshot.ManifestWriter([os.path.abspath(p) for p in opts.vault_paths]),
               cache.Writer(repo.id), up.flush, res, errors, old_cache)
    try:
        for item in walk(opts.vault_paths, opts.excludes, errors):
            st, path = item.st, item.path
            meta = [path, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                    st.st_atime_ns, st.st_mtime_ns]
            if stat.S_ISDIR(st.st_mode):
                res.dirs += 1
                out.put(_Item([snapshot.DIR, *meta, 0, None]))
            elif stat.S_ISLNK(st.st_mode):
                res.symlinks += 1
                try:
                    target = os.readlink(path)
                except OSError as exc:
                    errors.add(path, exc)
                    continue
                out.put(_Item([snapshot.LINK, *meta, 0, target]))
            elif stat.S_ISREG(st.st_mode):
                tag = crypto.keyed_tag(opts.dedup_key, path)
                key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
                text = old_cache.get(tag)
                hit = None if text is None else json.loads(text)
                if hit is not None and hit[:4] == key and _all_known(hit[4], known):
                    out.put(_Item([snapshot.FILE, *meta, st.st_size, hit[4]], tag, cached=text))
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
                out.put(_Item([snapshot.FILE, *meta, size, None], tag, key, pending))
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
        checkpoint(up, save_cache=False)  # index the last packs; the cache is saved below
    except BaseException:
        up.abort()
        raise
    out.drain(final=True)
    res.files_removed = len(old_cache) - out.kept
    old_cache.clear()  # not needed any more (the checkpoint object shares it)
    body = out.manifest.finish()
    refs = bytes(out.manifest.refs)  # every chunk the snapshot uses (repeats too)
    out.manifest.refs = bytearray()
    by_pack: dict[str, list[bytes]] = {}  # where each chunk the snapshot uses is
    for i in range(0, len(refs), 32):
        cid = refs[i:i + 32]
        # a chunk placed once is marked "" where it was found (no set of the ids seen)
        pack_id = written.get(cid)
        if pack_id is not None:
            written[cid] = ""
        else:
            h = cid.hex()
            pack_id = known.get(h)
            if pack_id is None:
                raise IntegrityError("a chunk of this run has no pack (a bug); nothing was "
                                     "published")
            known[h] = ""
        if pack_id:
            by_pack.setdefault(pack_id, []).append(cid)
    written.clear()
    known.clear()  # (its values are marks now; nothing below reads it)
    res.bytes_new, res.bytes_stored = up.bytes_new, up.bytes_stored
    res.skipped = errors.count
    res.skipped_paths = errors.paths or []
    header = {"time": now.isoformat(timespec="microseconds"), "host": socket.gethostname(),
              "files": res.files, "bytes": res.bytes_total, "repo": repo.id}
    if opts.tag is not None:
        header["tag"] = opts.tag
    # the next run's cache (this snapshot's files and chunks, all in indexed packs) before the
    # snapshot: a run killed in between leaves a cache the next run can trust
    cache_error: StorageError | None = None
    try:
        cache.save_bytes(opts.cache_dir, repo.id, out.next_cache.finish(by_pack))
    except StorageError as exc:
        cache.drop(opts.cache_dir, repo.id)  # the next run reads all; the snapshot still goes
        cache_error = exc
    data = snapshot.encode_body(header, refs, body, opts.public_key, by_pack)
    del refs, body
    res.snapshot_id = repo.write_snapshot(data)
    del data
    if cache_error is not None:
        raise cache_error
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
    old_cache: cache.CompactEntries
    known: cache.Chunks
    written: dict[bytes, str]

    def __call__(self, up: Uploader, *, save_cache: bool = True) -> None:
        packs = up.take_new_packs()
        if not packs:
            return
        with io_errors("writing the index"):
            self.repo.write_index({pid: sealed for pid, (sealed, _ids) in packs.items()})
        for pid, (_sealed, ids) in packs.items():
            self.written.update((cid, pid) for cid in ids)
        if not save_cache:
            return
        w = cache.Writer(self.repo.id)
        for tag, text in self.old_cache.items():
            if _text_known(text, self.known):
                w.add(tag, text)
        by_pack: dict[str, list[str] | list[bytes]] = {}  # ids as they are: no copies
        for h, pid in self.known.items():
            by_pack.setdefault(pid, []).append(h)  # type: ignore[arg-type]
        for cid, pid in self.written.items():
            if cid.hex() not in self.known:
                by_pack.setdefault(pid, []).append(cid)  # type: ignore[arg-type]
        cache.save_bytes(self.opts.cache_dir, self.repo.id, w.finish(by_pack))
