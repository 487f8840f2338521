"""The verifier step behind the reader: pick the card type's check by ATR, hold the site keys.

The gateway sets the keys whenever a policy brings them (``set_keys``); the PC/SC adapter
calls ``verify`` on its own thread while the card is still connected. Without keys every card
is judged UID-only (weak): a node that may not verify says so instead of guessing.

Enrolment: ``arm(reader, request, until)`` makes the next card at that reader (before the
monotonic deadline) be personalised with the newest site key instead of verified
(readers.verify.enrol); ``disarm`` ends a wait that no card answered. A card proving an
older key during a changeover (DESFire or FeliCa Lite-S) is re-keyed to the newest one at
that tap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from readers.verify import desfire, enrol, felica_lite
from readers.verify.base import (
    UID_ONLY,
    CardType,
    Credential,
    SiteKey,
    Strength,
    Transmit,
    VerifyIOError,
)

FELICA_STANDARD: Final[int] = 0x11  # PC/SC part 3 storage-card ATR: standard byte for FeliCa


def card_type(atr: bytes) -> CardType:
    """The verifiable card type an ATR announces (UID_ONLY when none)."""
    if atr.startswith(desfire.ATR):
        return CardType.DESFIRE
    # 3B 8F 80 01 80 4F 0C A0 00 00 03 06 <standard> <card name 2> ...
    if len(atr) >= 15 and atr[5:8] == b"\x4f\x0c\xa0" and atr[12] == FELICA_STANDARD:
        return CardType.FELICA_LITE_S
    return CardType.UID_ONLY


class CardVerifier:
    """Thread-safe holder of the site keys (newest first), of the enrolments waiting at a
    reader, and the per-type dispatch."""

    def __init__(self, keys: Sequence[SiteKey] = (), *, rekey: bool = True) -> None:
        self._lock = threading.Lock()
        self._keys: tuple[SiteKey, ...] = tuple(keys)
        self._armed: dict[str, tuple[str, float]] = {}  # reader -> (request, deadline)
        self.rekey = rekey

    def arm(self, reader: str, request: str, until: float) -> None:
        """Personalise the next card at ``reader`` (before ``until``, time.monotonic)."""
        with self._lock:
            self._armed[reader] = (request, until)

    def disarm(self, reader: str, request: str) -> bool:
        """End the wait for ``request``; True when no card had answered it yet."""
        with self._lock:
            if self._armed.get(reader, ("", 0.0))[0] != request:
                return False
            del self._armed[reader]
            return True

    def armed(self, reader: str) -> str | None:
        with self._lock:
            job = self._armed.get(reader)
            return job[0] if job is not None and time.monotonic() < job[1] else None

    def _take(self, reader: str | None) -> str | None:
        with self._lock:
            job = self._armed.pop(reader, None) if reader is not None else None
        return job[0] if job is not None and time.monotonic() < job[1] else None

    def set_keys(self, keys: Sequence[SiteKey]) -> None:
        with self._lock:
            self._keys = tuple(keys)

    @property
    def key_ids(self) -> list[str]:
        with self._lock:
            return [k.key_id for k in self._keys]

    def verify(self, transmit: Transmit, uid: bytes, atr: bytes,
               reader: str | None = None) -> Credential:
        """Raises VerifyIOError when the card could not be talked to (it left)."""
        kind = card_type(atr)
        request = self._take(reader)
        with self._lock:
            keys = self._keys
        if request is not None:
            if not keys:
                cred = Credential(Strength.FAILED, kind, "no site card key on this node")
            else:
                cred = enrol.personalise(transmit, uid, kind, keys[0])
            return replace(cred, enrolment=request)
        if kind is CardType.UID_ONLY:
            return UID_ONLY
        if not keys:
            return Credential(Strength.WEAK, kind, "no site card key on this node")
        if kind is CardType.DESFIRE:
            if self.rekey:
                return enrol.desfire_verify_rekey(transmit, uid, keys)
            return desfire.verify(transmit, uid, keys)
        if self.rekey:
            return enrol.felica_verify_rekey(transmit, uid, keys)
        return felica_lite.verify(transmit, uid, keys)


__all__ = ["CardVerifier", "VerifyIOError", "card_type"]
