"""A card's replies are hostile input: whatever a card (or an emulator) answers, the verifiers
return a verdict (never an exception, never "verified" without the key)."""

from __future__ import annotations

import random

from readers.verify import desfire, felica_lite
from readers.verify.base import SiteKey, Strength

K1 = SiteKey("k1", bytes(range(32)))
UID = bytes.fromhex("04A1B2C3D4E5F6")
IDM = bytes.fromhex("012E4CD0A1B2C3D4")


def _garbage(rng: random.Random):
    def transmit(_apdu: bytes) -> bytes:
        n = rng.choice([0, 1, 2, 3, 18, 34, 45, rng.randrange(0, 300)])
        body = bytes(rng.randrange(256) for _ in range(n))
        tail = rng.choice([b"", b"\x91\x00", b"\x91\xaf", b"\x90\x00", b"\x91\xae"])
        return body + tail
    return transmit


def test_random_replies_never_raise_and_never_verify() -> None:
    rng = random.Random(23)
    for _ in range(2000):
        for verdict in (desfire.verify(_garbage(rng), UID, [K1]),
                        felica_lite.verify(_garbage(rng), IDM, [K1])):
            assert verdict.strength is not Strength.VERIFIED
            assert len(verdict.detail) < 160
