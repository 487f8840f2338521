"""The verifier step behind the reader: pick the card type's check by ATR, hold the site keys.

The gateway sets the keys whenever a policy brings them (``set_keys``); the PC/SC adapter
calls ``verify`` on its own thread while the card is still connected. Without keys every card
is judged UID-only (weak): a node that may not verify says so instead of guessing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Final

from readers.verify import desfire, felica_lite
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
    """Thread-safe holder of the site keys (newest first) and the per-type dispatch."""

    def __init__(self, keys: Sequence[SiteKey] = ()) -> None:
        self._lock = threading.Lock()
        self._keys: tuple[SiteKey, ...] = tuple(keys)

    def set_keys(self, keys: Sequence[SiteKey]) -> None:
        with self._lock:
            self._keys = tuple(keys)

    @property
    def key_ids(self) -> list[str]:
        with self._lock:
            return [k.key_id for k in self._keys]

    def verify(self, transmit: Transmit, uid: bytes, atr: bytes) -> Credential:
        """Raises VerifyIOError when the card could not be talked to (it left)."""
        kind = card_type(atr)
        if kind is CardType.UID_ONLY:
            return UID_ONLY
        with self._lock:
            keys = self._keys
        if not keys:
            return Credential(Strength.WEAK, kind, "no site card key on this node")
        if kind is CardType.DESFIRE:
            return desfire.verify(transmit, uid, keys)
        return felica_lite.verify(transmit, uid, keys)


__all__ = ["CardVerifier", "VerifyIOError", "card_type"]
