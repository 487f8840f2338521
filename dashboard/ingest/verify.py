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


class SignatureVerifier:
    """Verifies (key, event) pairs; ``threads`` > 1 uses a pool for batches of 64 or more."""

    def __init__(self, threads: int = 1) -> None:
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
