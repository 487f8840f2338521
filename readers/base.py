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


class AlarmKind(StrEnum):
    """What a reader reports about itself (OSDP local status and secure channel)."""

    TAMPER = "tamper"  # the reader's housing opened or it was pulled off the wall
    POWER = "power"  # the reader's supply failed (``active``) or came back
    SECURE_REFUSED = "secure_refused"  # the reader failed the secure channel: wrong or default
    # key, or it cannot do SC at all; nothing it sends is believed


@dataclass(frozen=True)
class ReaderAlarm:
    reader: str
    kind: AlarmKind
    active: bool  # tamper on / power failed / refused; False when it cleared
    at: datetime
    detail: str = ""


class AlarmSink(TapSink, Protocol):
    """A sink that takes a reader's own alarms; adapters call ``on_alarm`` only on sinks that
    have it."""

    def on_alarm(self, alarm: ReaderAlarm) -> None: ...


class Signal(StrEnum):
    """What the door decided, for a reader that shows it (LED and buzzer)."""

    GRANTED = "granted"
    DENIED = "denied"
    PENDING = "pending"  # a first card of a two-person door: waiting for the second


class CardReader(Protocol):
    def start(self, sink: TapSink) -> None:
        """Begin watching; non-blocking (the adapter runs its own threads)."""
        ...

    def stop(self) -> None:
        """Stop watching and join the adapter's threads."""
        ...


class SignallingReader(CardReader, Protocol):
    """A reader whose LED and buzzer the gateway drives from its decision (OSDP). Returns at
    once (the adapter queues the command); False when the reader is unknown or offline."""

    def signal(self, reader: str, signal: Signal, seconds: float) -> bool: ...
