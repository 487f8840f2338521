"""Pure APDU helpers: build the PC/SC GET DATA (UID) command and parse its reply.

``parse_uid_reply`` accepts any reply and returns either :class:`UidOk` or :class:`UidError`; it
never raises and never returns a UID that is not exactly the data part of a ``90 00`` reply of
a known UID length.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from readers.base import FailureReason

# PC/SC part 3 pseudo-APDU: CLA FF, INS CA (GET DATA), P1 00 = UID, P2 00, Le 00 = all of it.
GET_DATA_UID: Final[bytes] = bytes((0xFF, 0xCA, 0x00, 0x00, 0x00))

# ISO 14443-A single/double/triple size UIDs (4, 7, 10 bytes) and the 8-byte FeliCa IDm
# (also ISO 15693 UIDs).
VALID_UID_LENGTHS: Final[frozenset[int]] = frozenset({4, 7, 8, 10})

SW_OK: Final[int] = 0x9000


@dataclass(frozen=True)
class UidOk:
    uid: bytes

    @property
    def uid_hex(self) -> str:
        return self.uid.hex().upper()


@dataclass(frozen=True)
class UidError:
    reason: FailureReason
    detail: str  # safe to log: status word and lengths only, never the reply's data bytes


def build_get_uid(le: int = 0) -> bytes:
    """GET DATA for the UID; ``le`` 0 means "as many bytes as the UID has"."""
    if not 0 <= le <= 0xFF:
        raise ValueError(f"Le must be 0..255, got {le}")
    return bytes((0xFF, 0xCA, 0x00, 0x00, le))


def _as_bytes(reply: bytes | bytearray | memoryview | Iterable[int]) -> bytes | None:
    if isinstance(reply, bytes):
        return reply
    try:
        return bytes(reply)
    except (TypeError, ValueError, OverflowError):
        return None


def parse_uid_reply(reply: bytes | bytearray | memoryview | Iterable[int]) -> UidOk | UidError:
    """Classify the card's reply to GET DATA (UID)."""
    raw = _as_bytes(reply)
    if raw is None:
        return UidError(FailureReason.TRANSMIT_FAILED, "reply is not a byte string")
    if len(raw) < 2:
        return UidError(FailureReason.SHORT_REPLY, f"reply has {len(raw)} byte(s), no status word")
    sw1, sw2 = raw[-2], raw[-1]
    sw = (sw1 << 8) | sw2
    data_len = len(raw) - 2
    if sw == SW_OK:
        if data_len not in VALID_UID_LENGTHS:
            return UidError(
                FailureReason.BAD_UID_LENGTH,
                f"SW=9000 with a {data_len}-byte UID (expected 4, 7, 8 or 10 bytes)",
            )
        return UidOk(raw[:-2])
    detail = f"SW={sw:04X}, {data_len} data byte(s)"
    if sw == 0x6A81:
        return UidError(FailureReason.FILE_NOT_FOUND, detail + " (function not supported)")
    if sw1 == 0x6C:
        return UidError(FailureReason.WRONG_LENGTH, detail + f" (card wants Le={sw2:02X})")
    if sw == 0x6282:
        return UidError(FailureReason.WARNING_EOF, detail + " (end of data before Le bytes)")
    if sw1 == 0x63:
        return UidError(FailureReason.VERIFY_FAILED, detail + " (warning, verification failed)")
    return UidError(FailureReason.STATUS_ERROR, detail)
