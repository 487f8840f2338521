"""The small-chunk worker: a child process that stores every chunk of at most ``SMALL`` bytes
(whole small files, read there by path, and the short tails of large files).

Per tiny file the work is a dozen short calls (open, read, close, keyed hash, zstd, AES-GCM,
append), each too short to release the GIL for long: in threads they convoy on the GIL with the
walking thread, and a run of 60,000 small files kept under one core busy. In a process of its
own this work runs beside the walk on the second core. It is the same code (``Uploader`` with
its own pack writer, dedup set and the cache's known ids); only chunks of at most ``SMALL``
bytes go here and only larger ones to the threads, so equal content always meets the same
dedup set and is stored once.

The parent talks to it over the child's stdin and stdout (pickle, between two processes of the
same program): an init message with the keys (never on the command line or in the
environment), then batches in order, each answered in order with its results, the packs
finished meanwhile and the byte counts; ``close`` publishes the open pack. If the parent dies,
the child (backup/worker_child.py) dies too (PR_SET_PDEATHSIG, and EOF on stdin); a pack it
was writing stays in ``tmp/`` and is removed by the next locked command, as for a killed run.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO

from backup.errors import StorageError

#: chunks of at most this many bytes are stored by the worker (chunker.MIN_SIZE: every file
#: read whole, and no content-defined chunk of a large file but its last one)
SMALL = 256 * 1024

Packs = dict[str, tuple[bytes, list[bytes]]]
Stats = tuple[int, int, int]  # bytes new, bytes stored, chunks new


class WorkerProcess:
    """The parent's side: submit batches, get a Future of each batch's results."""

    def __init__(self, root: Path, known: list[str], dedup_key: bytes, public_key: bytes, *,
                 pack_size: int, level: int,
                 on_done: Any) -> None:
        """``on_done(packs, stats)`` is called (in the reader thread) with each batch's new
        packs and byte counts before the batch's future is resolved."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "backup.worker_child"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env, close_fds=True)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._out: BinaryIO = self._proc.stdin
        self._in: BinaryIO = self._proc.stdout
        self._on_done = on_done
        self._pending: deque[Future[Any]] = deque()
        self._lock = threading.Lock()
        self._dead: BaseException | None = None
        self._send(("init", os.getpid(), str(root), known, dedup_key, public_key, pack_size,
                    level))
        self._reader = threading.Thread(target=self._read, name="backup-worker-reader",
                                        daemon=True)
        self._reader.start()

    def _send(self, msg: tuple[Any, ...]) -> None:
        try:
            pickle.dump(msg, self._out, protocol=pickle.HIGHEST_PROTOCOL)
            self._out.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self._gone() from exc

    def _gone(self) -> StorageError:
        code = self._proc.poll()
        return StorageError("the backup's small-file worker process ended unexpectedly"
                            + (f" (exit status {code})" if code is not None else "")
                            + "; nothing was published for its files: run again")

    def submit(self, items: list[tuple[str, int] | bytes]) -> Future[Any]:
        fut: Future[Any] = Future()
        with self._lock:
            if self._dead is not None:
                raise self._dead
            self._pending.append(fut)
        self._send(("batch", items))
        return fut

    def _read(self) -> None:
        try:
            while True:
                try:
                    msg = pickle.load(self._in)  # noqa: S301 - our own child process
                except EOFError:
                    break
                with self._lock:
                    fut = self._pending.popleft()
                if msg[0] == "error":
                    fut.set_exception(msg[1])
                    continue
                self._on_done(msg[2], msg[3])
                fut.set_result(msg[1])
        finally:
            self._in.close()
            exc = self._gone()
            with self._lock:
                self._dead = exc
                pending, self._pending = list(self._pending), deque()
            for fut in pending:
                fut.set_exception(exc)

    def close(self) -> None:
        """Publish the worker's open pack (reported through ``on_done``) and end it."""
        fut: Future[Any] = Future()
        with self._lock:
            if self._dead is not None:
                raise self._dead
            self._pending.append(fut)
        self._send(("close",))
        fut.result()
        self._out.close()
        self._reader.join()
        if self._proc.wait() != 0:
            raise self._gone()

    def abort(self) -> None:
        """End the worker without publishing anything more."""
        with contextlib.suppress(OSError):
            self._out.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=10)
