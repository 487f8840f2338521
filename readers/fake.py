"""A stateful fake card reader for unit tests: drive it, it calls the sink like a real one.

Events are delivered synchronously, in the thread that drives the fake, so tests need no
waiting. Debouncing follows the real adapter: ``present`` on a reader that already holds a card
yields nothing until ``remove``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from readers.base import (
    FAILURE_REASONS,
    CardRemoved,
    CardTap,
    ReaderError,
    ReaderStatus,
    ReadFailure,
    TapSink,
    utc_now,
)
from readers.virtual import DEFAULT_ATR

_HEX = frozenset("0123456789ABCDEF")


@dataclass
class _FakeSlot:
    connected: bool = True
    card: str | None = None  # UID of the card on the reader


@dataclass
class FakeReader:
    """Readers named in ``readers`` (the first one is the default for every call)."""

    readers: tuple[str, ...] = ("Fake Reader 00 00",)
    taps: list[CardTap] = field(default_factory=list)  # everything delivered, for inspection
    statuses: list[ReaderStatus] = field(default_factory=list)
    failures: list[ReadFailure] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.readers:
            raise ValueError("FakeReader needs at least one reader name")
        self._slots = {name: _FakeSlot() for name in self.readers}
        self._sink: TapSink | None = None

    # -- CardReader ------------------------------------------------------------------------

    def start(self, sink: TapSink) -> None:
        if self._sink is not None:
            raise ReaderError("FakeReader already started")
        self._sink = sink
        for name, slot in self._slots.items():
            if slot.connected:
                self._status(name, True, "reader present")

    def stop(self) -> None:
        self._sink = None

    @property
    def started(self) -> bool:
        return self._sink is not None

    # -- driving ---------------------------------------------------------------------------

    def _slot(self, reader: str | None) -> tuple[str, _FakeSlot]:
        name = reader or self.readers[0]
        if name not in self._slots:
            raise ReaderError(f"unknown fake reader {name!r}")
        if self._sink is None:
            raise ReaderError("FakeReader not started")
        return name, self._slots[name]

    def present(
        self, uid: str | bytes, reader: str | None = None, atr: bytes = DEFAULT_ATR
    ) -> CardTap | None:
        """A card enters the field; returns the tap, or None when debounced (card still there)."""
        name, slot = self._slot(reader)
        uid_hex = uid.hex().upper() if isinstance(uid, bytes) else uid.upper()
        if not uid_hex or len(uid_hex) % 2 or not set(uid_hex) <= _HEX:
            raise ValueError("uid must be hex bytes")
        if not slot.connected:
            raise ReaderError(f"fake reader {name!r} is disconnected")
        if slot.card is not None:
            return None
        slot.card = uid_hex
        now = time.monotonic()
        tap = CardTap(name, uid_hex, atr.hex().upper(), utc_now(), now, now)
        self.taps.append(tap)
        assert self._sink is not None
        self._sink.on_tap(tap)
        return tap

    def remove(self, reader: str | None = None) -> None:
        """The card leaves the field (sinks with ``on_removed`` are told)."""
        name, slot = self._slot(reader)
        had = slot.card is not None
        slot.card = None
        on_removed = getattr(self._sink, "on_removed", None)
        if had and on_removed is not None:
            on_removed(CardRemoved(name, utc_now()))

    def fail(self, reason: str, reader: str | None = None, detail: str = "fake failure") -> None:
        """A presentation that ends in a read failure (``reason`` as in ReadFailure)."""
        if reason not in FAILURE_REASONS:
            raise ValueError(f"unknown failure reason {reason!r}")
        name, _ = self._slot(reader)
        failure = ReadFailure(name, reason, detail, utc_now())
        self.failures.append(failure)
        assert self._sink is not None
        self._sink.on_failure(failure)

    def disconnect(self, reader: str | None = None, detail: str = "reader removed") -> None:
        name, slot = self._slot(reader)
        if slot.connected:
            slot.connected = False
            slot.card = None
            self._status(name, False, detail)

    def connect(self, reader: str | None = None, detail: str = "reader present") -> None:
        name, slot = self._slot(reader)
        if not slot.connected:
            slot.connected = True
            self._status(name, True, detail)

    def _status(self, name: str, connected: bool, detail: str) -> None:
        status = ReaderStatus(name, connected, utc_now(), detail)
        self.statuses.append(status)
        assert self._sink is not None
        self._sink.on_status(status)
