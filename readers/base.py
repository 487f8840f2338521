"""Shared types of the card-reader boundary: taps, statuses, failures, the reader protocol.

Every adapter (``pcsc`` for real PC/SC readers, ``fake`` for unit tests) hands its events to a
:class:`TapSink`. A reader yields at most one outcome per card presentation: a :class:`CardTap`
(the UID was read and is well formed) or a :class:`ReadFailure` (a short reason code, never a
guessed UID).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, Protocol

from readers.verify.base import UID_ONLY, Credential


class ReaderError(Exception):
    """A reader adapter could not do what was asked (bad setup, service missing, misuse)."""


class ReaderRole(StrEnum):
    DOOR_IN = "door_in"
    DOOR_OUT = "door_out"
    PRINTER = "printer"
    RACK_A = "rack_a"
    RACK_B = "rack_b"


class FailureReason(StrEnum):
    """The ``reason`` codes a :class:`ReadFailure` carries (a plain ``str`` on the wire)."""

    FILE_NOT_FOUND = "file_not_found"  # SW 6A81 (function not supported / no UID)
    WRONG_LENGTH = "wrong_length"  # SW 6Cxx
    WARNING_EOF = "warning_eof"  # SW 6282
    VERIFY_FAILED = "verify_failed"  # SW 63xx
    STATUS_ERROR = "status_error"  # any other SW but 9000
    SHORT_REPLY = "short_reply"  # fewer than two bytes (no status word)
    BAD_UID_LENGTH = "bad_uid_length"  # SW 9000 but the UID length is not a known one
    REMOVED = "removed"  # card left the reader before the UID was read
    TRANSMIT_FAILED = "transmit_failed"  # connect/transmit failed for another reason


FAILURE_REASONS: Final[frozenset[str]] = frozenset(r.value for r in FailureReason)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CardTap:
    reader: str
    uid: str  # uppercase hex, no separators
    atr: str  # uppercase hex
    at: datetime  # aware UTC, when the UID was read
    read_monotonic: float  # time.monotonic() right after the UID reply was parsed
    present_monotonic: float  # time.monotonic() when the card presence was first seen
    credential: Credential = UID_ONLY  # what the verifier step proved (readers.verify)


@dataclass(frozen=True)
class ReaderStatus:
    reader: str
    connected: bool
    at: datetime
    detail: str


@dataclass(frozen=True)
class ReadFailure:
    reader: str
    reason: str  # one of FAILURE_REASONS
    detail: str  # safe to log: hex status words, error codes, lengths; never a UID-less guess
    at: datetime


@dataclass(frozen=True)
class CardRemoved:
    """The card of a presentation left the reader (after its tap or failure)."""

    reader: str
    at: datetime


class TapSink(Protocol):
    def on_tap(self, tap: CardTap) -> None: ...

    def on_status(self, status: ReaderStatus) -> None: ...

    def on_failure(self, failure: ReadFailure) -> None: ...


class PresenceSink(TapSink, Protocol):
    """A sink that also wants to know when a card leaves (a host locks its sessions then).
    Adapters call ``on_removed`` only on sinks that have it."""

    def on_removed(self, removed: CardRemoved) -> None: ...


class CardReader(Protocol):
    def start(self, sink: TapSink) -> None:
        """Begin watching; non-blocking (the adapter runs its own threads)."""
        ...

    def stop(self) -> None:
        """Stop watching and join the adapter's threads."""
        ...
