"""Ed25519 verification of many events, optionally spread over a thread pool.

``cryptography`` releases the GIL while verifying, so threads give real parallelism here.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controller.envelope import Event, unb64u
from controller.keys import KeyFileError, public_from_b64


def _check(key: Ed25519PublicKey, event: Event) -> bool:
    try:
        key.verify(unb64u(event.sig), bytes.fromhex(event.hash))
    except (InvalidSignature, ValueError):
        return False
    return True


def _check_chunk(items: Sequence[tuple[Ed25519PublicKey, Event]]) -> list[bool]:
    return [_check(k, e) for k, e in items]


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
    """Verifies (key, event) pairs; ``threads`` > 1 uses a pool for batches of 64 or more.

    ``mode="every"`` checks every signature. ``mode="chain"`` checks, per run of hash-linked
    events of one node, only the last one's signature: it covers its hash, which covers its
    ``prev``, and so on down the run, so every event's content is authenticated by the node's
    key. Only the ``sig`` field of the inner events is then not checked individually. A run
    whose last signature fails is checked event by event.
    """

    def __init__(self, threads: int = 1, mode: str = "every") -> None:
        if mode not in ("every", "chain"):
            raise ValueError(f"unknown verification mode {mode!r} (every or chain)")
        self.mode = mode
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self.threads, "verify") if self.threads > 1 else None
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

    def verify_events(self, items: Sequence[tuple[Ed25519PublicKey, Event]]) -> list[bool]:
        """One verdict per item, following ``mode``."""
        if self.mode == "every":
            return self.verify_many(items)
        runs = chain_runs(items)
        tails = self.verify_many([items[run[-1]] for run in runs])
        out = [False] * len(items)
        retry: list[int] = []
        for run, good in zip(runs, tails, strict=True):
            if good:
                for i in run:
                    out[i] = True
            else:
                retry.extend(run)
        for i, good in zip(retry, self.verify_many([items[i] for i in retry]), strict=True):
            out[i] = good
        return out

    def verify_many(self, items: Sequence[tuple[Ed25519PublicKey, Event]]) -> list[bool]:
        if self._pool is None or len(items) < 64:
            return _check_chunk(items)
        size = -(-len(items) // self.threads)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        out: list[bool] = []
        for part in self._pool.map(_check_chunk, chunks):
            out.extend(part)
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
