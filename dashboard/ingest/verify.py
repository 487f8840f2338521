"""Ed25519 verification of events, and the audit of the signatures chain mode left for later.

``cryptography`` keeps the GIL while it verifies (threads gave no speed-up: 74 µs per event with
one thread or two), so the audit runs in a worker process: batches go to it as (raw public key,
signature, digest) triples, a few bytes each to pickle (spawned: no fork of a threaded
dashboard; the worker dies with the dashboard, see ``worker_init``).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import resource_tracker

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controller.envelope import Event, unb64u
from controller.keys import KeyFileError, public_from_b64

_CHUNK = 250

Triple = tuple[bytes, str, str]  # raw public key, signature (base64url), digest (hex)


def _check(key: Ed25519PublicKey, event: Event) -> bool:
    try:
        key.verify(unb64u(event.sig), bytes.fromhex(event.hash))
    except (InvalidSignature, ValueError):
        return False
    return True


_worker_keys: dict[bytes, Ed25519PublicKey] = {}


def _check_triples(triples: Sequence[Triple]) -> list[bool]:
    """Runs in a pool worker; a signature or digest that does not even decode is a failure."""
    out = []
    for raw, sig, digest in triples:
        try:
            key = _worker_keys.get(raw)
            if key is None:
                if len(_worker_keys) > 10_000:
                    _worker_keys.clear()
                key = _worker_keys[raw] = Ed25519PublicKey.from_public_bytes(raw)
            key.verify(unb64u(sig), bytes.fromhex(digest))
        except (InvalidSignature, ValueError, TypeError):
            out.append(False)
        else:
            out.append(True)
    return out


def chain_runs(items: Sequence[tuple[Ed25519PublicKey, Event]]) -> list[list[int]]:
    """Indices of ``items`` grouped in runs: same node, consecutive seq, each ``prev`` equal
    to the previous event's ``hash`` (hashes already checked against bodies by ``parse``)."""
    order = sorted(range(len(items)), key=lambda i: (items[i][1].node, items[i][1].seq))
    runs: list[list[int]] = []
    last: Event | None = None
    for i in order:
        ev = items[i][1]
        if (
            last is not None
            and ev.node == last.node
            and ev.seq == last.seq + 1
            and ev.prev == last.hash
            and items[i][0] is items[runs[-1][-1]][0]
        ):
            runs[-1].append(i)
        else:
            runs.append([i])
        last = ev
    return runs


class SignatureVerifier:
    """Verifies (key, event) pairs in this process.

    ``mode="every"`` checks every signature before anything is stored. ``mode="chain"`` checks,
    per run of hash-linked events of one node, only the last one's signature: it covers its hash,
    which covers its ``prev``, and so on down the run, so every event's content is authenticated
    by the node's key before it is stored. The positions of the inner events, whose own ``sig``
    is still unchecked, are returned for the consumer's :class:`SignatureAudit`, which checks
    each of them after the commit (a bad one raises a ``bad_signature`` anomaly). A run whose
    last signature fails is checked event by event.
    """

    def __init__(self, mode: str = "every") -> None:
        if mode not in ("every", "chain"):
            raise ValueError(f"unknown verification mode {mode!r} (every or chain)")
        self.mode = mode
        self._keys: dict[str, Ed25519PublicKey] = {}

    def key(self, b64: str) -> Ed25519PublicKey | None:
        """The public key object for an enrolled base64url key (cached), None if unusable."""
        cached = self._keys.get(b64)
        if cached is None:
            try:
                cached = public_from_b64(b64)
            except KeyFileError:
                return None
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[b64] = cached
        return cached

    def verify_events(
        self, items: Sequence[tuple[Ed25519PublicKey, Event]]
    ) -> tuple[list[bool], list[int]]:
        """One verdict per item, following ``mode``, and the positions of the items accepted
        without their own signature checked (always empty in "every" mode)."""
        if self.mode == "every":
            return self.verify_many(items), []
        runs = chain_runs(items)
        tails = self.verify_many([items[run[-1]] for run in runs])
        out = [False] * len(items)
        unchecked: list[int] = []
        retry: list[int] = []
        for run, good in zip(runs, tails, strict=True):
            if good:
                for i in run:
                    out[i] = True
                unchecked.extend(run[:-1])
            else:
                retry.extend(run)
        for i, good in zip(retry, self.verify_many([items[i] for i in retry]), strict=True):
            out[i] = good
        return out, unchecked

    def verify_many(self, items: Sequence[tuple[Ed25519PublicKey, Event]]) -> list[bool]:
        return [_check(k, e) for k, e in items]


class SignatureAudit:
    """Checks, after they are stored, the signatures that chain mode did not check first.

    Work goes to one low-priority worker process (or is done at once when ``processes`` is 0):
    under a burst the audit lags behind the store and catches up when the burst ends; past
    ``max_pending`` unchecked events, ``submit`` waits for the oldest work (back-pressure, so
    the lag is bounded). ``poll`` returns the (node, seq) of every signature found bad.
    """

    def __init__(self, processes: int = 1, max_pending: int = 200_000) -> None:
        self.processes = max(0, processes)
        self.max_pending = max_pending
        self._pool: ProcessPoolExecutor | None = None
        self._work: deque[tuple[Future[list[bool]], list[tuple[str, int]], list[Triple]]] = deque()
        self.pending = 0
        self.checked = 0
        self.failed: list[tuple[str, int]] = []

    def submit(self, items: Sequence[tuple[Ed25519PublicKey, Event]]) -> None:
        raw_keys: dict[int, bytes] = {}
        for i in range(0, len(items), _CHUNK * 4):
            chunk = items[i : i + _CHUNK * 4]
            refs = [(e.node, e.seq) for _, e in chunk]
            triples = []
            for key, event in chunk:
                raw = raw_keys.get(id(key))
                if raw is None:
                    raw = raw_keys[id(key)] = key.public_bytes(
                        serialization.Encoding.Raw, serialization.PublicFormat.Raw
                    )
                triples.append((raw, event.sig, event.hash))
            if self.processes == 0:
                self._record(refs, _check_triples(triples))
                continue
            while self.pending + len(triples) > self.max_pending and self._work:
                self._finish(self._work.popleft())
            try:
                # the first submit to a new pool starts its worker
                starting = sigint_blocked() if self._pool is None else contextlib.nullcontext()
                with starting:
                    future = self._ensure_pool().submit(_check_triples, triples)
            except (BrokenProcessPool, RuntimeError):
                self._drop_pool()
                self._record(refs, _check_triples(triples))
                continue
            self._work.append((future, refs, triples))
            self.pending += len(triples)

    def poll(self, wait: bool = False) -> list[tuple[str, int]]:
        """Collect finished work (all of it with ``wait``); returns and forgets the failures."""
        while self._work and (wait or self._work[0][0].done()):
            self._finish(self._work.popleft())
        out, self.failed = self.failed, []
        return out

    def _finish(self, work: tuple[Future[list[bool]], list[tuple[str, int]], list[Triple]]) -> None:
        future, refs, triples = work
        self.pending -= len(triples)
        try:
            verdicts = future.result()
        except (BrokenProcessPool, CancelledError):
            self._drop_pool()
            verdicts = _check_triples(triples)
        self._record(refs, verdicts)

    def _record(self, refs: list[tuple[str, int]], verdicts: list[bool]) -> None:
        self.checked += len(verdicts)
        self.failed.extend(ref for ref, ok in zip(refs, verdicts, strict=True) if not ok)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=worker_init,
                initargs=(10,),
            )
        return self._pool

    def _drop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        """Stop the worker (work not started is dropped: those events stay unaudited)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


_PR_SET_PDEATHSIG = 1


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Start helper processes inside this block: they begin with SIGINT blocked (the mask is
    inherited across fork and exec), so a Ctrl-C at the terminal, which reaches the whole
    process group, cannot interrupt their start-up with a traceback; ``worker_init`` then
    ignores it for good. A Ctrl-C meanwhile waits for the block's end in this process."""
    # a spawn first starts multiprocessing's resource tracker if it is not running, and that
    # start unblocks SIGINT in the calling thread: done here, before the mask is set
    resource_tracker.ensure_running()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def worker_init(nice: int = 0) -> None:
    """In a helper process: die with the process that started it (even if that one is
    SIGKILLed, no orphan keeps running), leave Ctrl-C to it (a terminal signals the whole
    process group; the parent stops its helpers, and here it only printed a traceback), and
    with ``nice``, run only on idle CPU time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # see sigint_blocked
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
    if nice:
        with contextlib.suppress(OSError, AttributeError):
            # idle class: runs only on CPU time nothing else wants (falls back to nice)
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        with contextlib.suppress(OSError):
            os.nice(nice)
