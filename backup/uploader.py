"""The parallel write path: keyed hash, dedup, zstd, AES-GCM and pack writing in threads.

Chunks are submitted in batches (so 20,000 small files do not cost 20,000 futures); each worker
thread owns its own pack writer, so hashing, compression, encryption, writing and fsync all run
in parallel (hashlib, zstandard and cryptography release the GIL on large buffers). In-flight
bytes are bounded to keep the peak RSS low.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from backup import compress, crypto
from backup.pack import FLAG_ZSTD, PackWriter

ZERO = bytes(8 * 1024 * 1024)
BATCH_BYTES = 1024 * 1024
BATCH_COUNT = 512
#: a chunk counts at least this much against the in-flight bound, so tiny files are bounded
#: in number too (each one waits in the run's queue until its result is in)
MIN_WEIGHT = 4096

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


class Uploader:
    def __init__(self, root: Path, known: Mapping[str, str], dedup_key: bytes,
                 public_key: bytes, *, threads: int, pack_size: int, level: int,
                 max_inflight: int = 8 << 20) -> None:
        """``known``: chunk ids (hex) already stored, from the gateway's cache."""
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
        self._batch: list[Data | SmallFile] = []
        self._batch_bytes = 0
        self.bytes_new = 0
        self.bytes_stored = 0
        self.chunks_new = 0
        self._error: BaseException | None = None

    # --- submission (main thread) -----------------------------------------------------------

    def add(self, data: Data | SmallFile) -> tuple[Future[list[Result]], int]:
        """Queue one chunk; returns (future of its batch's results, index in that batch)."""
        if not self._batch:
            self._future: Future[list[Result]] = Future()
        self._batch.append(data)
        self._batch_bytes += max(len(data), MIN_WEIGHT)
        fut, pos = self._future, len(self._batch) - 1
        if self._batch_bytes >= BATCH_BYTES or len(self._batch) >= BATCH_COUNT:
            self.flush()
        return fut, pos

    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    def flush(self) -> None:
        self._raise_pending()
        if not self._batch:
            return
        batch, size, outer = self._batch, self._batch_bytes, self._future
        self._batch, self._batch_bytes = [], 0
        with self._cond:
            while self._inflight > 0 and self._inflight + size > self._max_inflight:
                self._cond.wait()
            self._inflight += size
        inner = self._pool.submit(self._work, batch, size)

        def _relay(f: Future[list[Result]]) -> None:
            exc = f.exception()
            if exc is not None:
                outer.set_exception(exc)
            else:
                outer.set_result(f.result())

        inner.add_done_callback(_relay)

    # --- workers ------------------------------------------------------------------------------

    def _work(self, batch: list[Data | SmallFile], size: int) -> list[Result]:
        try:
            if self._error is not None:
                raise self._error
            return [self._file(d) if isinstance(d, SmallFile) else self._one(d) for d in batch]
        except BaseException as exc:
            self._error = self._error or exc
            raise
        finally:
            with self._cond:
                self._inflight -= size
                self._cond.notify_all()

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
        self._batch = []
        self._pool.shutdown(wait=True, cancel_futures=True)
        for w in self._writers:
            w.abort()
        self._writers.clear()
