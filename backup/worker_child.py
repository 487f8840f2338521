"""The small-chunk worker process itself (``python -m backup.worker_child``), started by
backup/worker.py: it reads the init message and batches on stdin, stores them with its own
``Uploader`` (one pack writer, its own dedup set) and answers each on stdout."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import Any, BinaryIO

from backup.memory import libc, tune_allocator
from backup.uploader import SmallFile, Uploader

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(AttributeError):
        libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # type: ignore[union-attr]
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    msg = pickle.load(inp)  # noqa: S301
    _kind, parent, root, known, dedup_key, public_key, pack_size, level = msg
    _die_with_parent(parent)
    up = Uploader(Path(root), set(known), dedup_key, public_key, threads=1,
                  pack_size=pack_size, level=level, workers=0)
    del known, msg
    closed = False
    try:
        while True:
            try:
                msg = pickle.load(inp)  # noqa: S301
            except EOFError:
                return  # the parent went away: publish nothing more
            reply: tuple[Any, ...]
            try:
                if msg[0] == "close":
                    up.close()
                    closed = True
                    results = []
                else:
                    results = up.store([SmallFile(*i) if isinstance(i, tuple) else i
                                        for i in msg[1]])
                reply = ("ok", results, up.take_new_packs(), up.take_stats())
            except Exception as exc:  # noqa: BLE001 - sent to the parent, which raises it
                reply = ("error", exc)
            pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
    finally:
        if not closed:
            up.abort()


def main() -> int:
    tune_allocator()
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the answers
    serve(inp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
