"""The parallel write path: keyed hash, dedup, zstd, AES-GCM and pack writing in threads.

Chunks are submitted in batches (so 20,000 small files do not cost 20,000 futures); each worker
thread owns its own pack writer, so hashing, compression, encryption, writing and fsync all run
in parallel (hashlib, zstandard and cryptography release the GIL on large buffers). In-flight
bytes are bounded to keep the peak RSS low.

Chunks of at most ``worker.SMALL`` bytes (small files, read by path) go to the threads too for
the first ``WORKER_AFTER`` of them; after that, to the small-chunk worker processes
(backup/worker.py), where their many short calls do not hold the walking thread's GIL. Before
the switch the threads' batches are awaited and the ids they claimed are handed to the workers
as known; then a chunk's length chooses its worker. So no content is stored twice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from backup import compress, crypto
from backup.pack import FLAG_ZSTD, PackWriter
from backup.worker import SMALL, WorkerProcess

ZERO = bytes(8 * 1024 * 1024)
BATCH_BYTES = 1024 * 1024
BATCH_COUNT = 512
#: a chunk counts at least this much against the in-flight bound, so tiny files are bounded
#: in number too (each one waits in the run's queue until its result is in)
MIN_WEIGHT = 4096
#: small chunks stored by the threads before the worker process takes them over (a run that
#: changed only a few files does not start it)
WORKER_AFTER = 1024

Data = bytes | memoryview
ChunkResult = bytes | None  # chunk id, or None for an all-zero chunk
# a whole small file read by a worker: (chunk result, bytes read), or the error reading it
FileResult = tuple[ChunkResult, int] | OSError
Result = ChunkResult | FileResult


class SmallFile:
    """A file of at most one chunk, read by a worker thread rather than the walking thread."""

    __slots__ = ("path", "size")

    def __init__(self, path: str, size: int) -> None:
        self.path, self.size = path, size

    def __len__(self) -> int:
        return self.size


def read_small(path: str, size: int) -> bytes:
    try:  # O_NOATIME: a backup does not disturb the vault's access times (owner or root only)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOATIME)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def is_zero(data: Data) -> bool:
    n = len(data)
    if n == 0 or data[:32] != ZERO[: min(32, n)]:
        return False
    return data == ZERO[:n] if n <= len(ZERO) else bytes(data).count(0) == n


class _Batch:
    __slots__ = ("items", "size", "future")

    def __init__(self) -> None:
        self.items: list[Data | SmallFile] = []
        self.size = 0
        self.future: Future[list[Result]] = Future()


class Uploader:
    def __init__(self, root: Path, known: Collection[str], dedup_key: bytes,
                 public_key: bytes, *, threads: int, pack_size: int, level: int,
                 max_inflight: int = 8 << 20, workers: int = 1) -> None:
        """``known``: chunk ids (hex) already stored, from the gateway's cache. ``workers``:
        worker processes for small chunks after the first ``WORKER_AFTER`` (0: none). A
        chunk's worker follows from its length, so equal content always meets the same one."""
        self._root, self._known, self._key, self._pub = root, known, dedup_key, public_key
        self._pack_size, self._level = pack_size, level
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="backup-w")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._claimed: set[bytes] = set()
        self._writers: list[PackWriter] = []
        #: packs finished since the last take_new_packs: pack id -> (sealed trailer, chunk ids)
        self.new_packs: dict[str, tuple[bytes, list[bytes]]] = {}
        self._cond = threading.Condition()
        self._inflight = 0
        self._max_inflight = max_inflight
        self._big = _Batch()  # chunks for the threads
        self._lanes = [_Batch() for _ in range(max(1, workers))]  # chunks of <= SMALL bytes
        self._small_count = 0
        self._n_workers = workers
        self._workers: list[WorkerProcess] = []
        self.bytes_new = 0
        self.bytes_stored = 0
        self.chunks_new = 0
        self._error: BaseException | None = None

    # --- submission (main thread) -----------------------------------------------------------

    def add(self, data: Data | SmallFile) -> tuple[Future[list[Result]], int]:
        """Queue one chunk; returns (future of its batch's results, index in that batch)."""
        n = len(data)
        lane = n % len(self._lanes) if n <= SMALL else None
        batch = self._big if lane is None else self._lanes[lane]
        batch.items.append(data)
        batch.size += max(n, MIN_WEIGHT)
        fut, pos = batch.future, len(batch.items) - 1
        if batch.size >= BATCH_BYTES or len(batch.items) >= BATCH_COUNT:
            self._submit(lane)
        return fut, pos

    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    def flush(self) -> None:
        """Submit the open batches."""
        self._submit(None)
        for lane in range(len(self._lanes)):
            self._submit(lane)

    def _submit(self, lane: int | None) -> None:
        """Submit the big chunks' batch (``lane`` None) or a small chunks' one."""
        self._raise_pending()
        batch = self._big if lane is None else self._lanes[lane]
        if not batch.items:
            return
        if lane is None:
            self._big = _Batch()
        else:
            self._lanes[lane] = _Batch()
            self._small_count += len(batch.items)
            if not self._workers and self._n_workers and self._small_count > WORKER_AFTER:
                self._start_workers()
        with self._cond:
            while self._inflight > 0 and self._inflight + batch.size > self._max_inflight:
                self._cond.wait()
            self._inflight += batch.size
        outer, size = batch.future, batch.size
        worker = self._workers[lane] if lane is not None and self._workers else None
        to_worker = worker is not None
        if worker is not None:
            items = [(d.path, d.size) if isinstance(d, SmallFile) else bytes(d)
                     for d in batch.items]
            try:
                inner = worker.submit(items)
            except BaseException:
                self._release(size)
                raise
        else:
            inner = self._pool.submit(self._work, batch.items, size)

        def _relay(f: Future[list[Result]]) -> None:
            if to_worker:
                self._release(size)  # (the threads release their own in _work)
            exc = f.exception()
            if exc is not None:
                self._error = self._error or exc
                outer.set_exception(exc)
            else:
                outer.set_result(f.result())

        inner.add_done_callback(_relay)

    def _release(self, size: int) -> None:
        with self._cond:
            self._inflight -= size
            self._cond.notify_all()

    def _start_workers(self) -> None:
        """Wait for the threads' batches, then start the workers knowing every id stored or
        claimed so far (so they store none of them again)."""
        with self._cond:
            while self._inflight > 0:
                self._cond.wait()
        self._raise_pending()
        with self._lock:
            known = [*self._known, *(c.hex() for c in self._claimed)]
        try:
            for _ in self._lanes:
                self._workers.append(WorkerProcess(
                    self._root, known, self._key, self._pub, pack_size=self._pack_size,
                    level=self._level, on_done=self._worker_done))
        except BaseException:
            for w in self._workers:
                w.abort()
            self._workers = []
            raise

    def _worker_done(self, packs: dict[str, tuple[bytes, list[bytes]]],
                     stats: tuple[int, int, int]) -> None:
        with self._lock:
            self.new_packs.update(packs)
            self.bytes_new += stats[0]
            self.bytes_stored += stats[1]
            self.chunks_new += stats[2]

    # --- workers ------------------------------------------------------------------------------

    def _work(self, batch: list[Data | SmallFile], size: int) -> list[Result]:
        try:
            if self._error is not None:
                raise self._error
            return self.store(batch)
        except BaseException as exc:
            self._error = self._error or exc
            raise
        finally:
            self._release(size)

    def store(self, batch: list[Data | SmallFile]) -> list[Result]:
        """Store one batch in the calling thread (a pool thread, or the worker process)."""
        return [self._file(d) if isinstance(d, SmallFile) else self._one(d) for d in batch]

    def take_stats(self) -> tuple[int, int, int]:
        """(bytes new, bytes stored, chunks new) since the last call (the worker process)."""
        with self._lock:
            out = (self.bytes_new, self.bytes_stored, self.chunks_new)
            self.bytes_new = self.bytes_stored = self.chunks_new = 0
        return out

    def _writer(self) -> PackWriter:
        w: PackWriter | None = getattr(self._local, "w", None)
        if w is None:
            w = self._local.w = PackWriter(self._root, self._pub)
            with self._lock:
                self._writers.append(w)
        return w

    def _file(self, item: SmallFile) -> FileResult:
        try:
            data = read_small(item.path, item.size)
        except OSError as exc:
            return exc  # named and counted by the walking thread; the run goes on
        return self._one(data), len(data)

    def _one(self, data: Data) -> ChunkResult:
        if is_zero(data):
            return None
        cid = crypto.chunk_id(self._key, data)
        with self._lock:
            if cid in self._claimed or cid.hex() in self._known:
                return cid
            self._claimed.add(cid)
        packed = compress.maybe_compress(data, self._level)
        w = self._writer()
        if packed is None:
            stored = w.add(cid, data, len(data), 0)
        else:
            stored = w.add(cid, packed, len(data), FLAG_ZSTD)
        with self._lock:
            self.bytes_new += len(data)
            self.bytes_stored += stored
            self.chunks_new += 1
        if w.size >= self._pack_size:
            self._local.w = None
            self._finish(w)
        return cid

    def _finish(self, w: PackWriter) -> None:
        pack_id, _size = w.finish()
        with self._lock:
            self._writers.remove(w)
            # the sealed trailer (for the index) and the ids only: not an Entry per chunk
            self.new_packs[pack_id] = (w.sealed_trailer, [e.id for e in w.entries])

    # --- end ---------------------------------------------------------------------------------

    def close(self) -> dict[str, tuple[bytes, list[bytes]]]:
        """Wait for every chunk, publish all open packs; returns every pack written."""
        self.flush()
        self._pool.shutdown(wait=True)
        for w in self._workers:
            w.close()  # its last results and packs are in before this returns
        self._raise_pending()
        for w in list(self._writers):
            if w.entries:
                self._finish(w)
            else:
                w.abort()
                self._writers.remove(w)
        return self.new_packs

    def take_new_packs(self) -> dict[str, tuple[bytes, list[bytes]]]:
        with self._lock:
            out, self.new_packs = self.new_packs, {}
        return out

    def abort(self) -> None:
        self._big, self._lanes = _Batch(), [_Batch() for _ in self._lanes]
        for w in self._workers:
            w.abort()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for w in self._writers:
            w.abort()
        self._writers.clear()
