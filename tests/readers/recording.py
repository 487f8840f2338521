"""A TapSink that records everything and lets a test await the next event of a kind."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

from readers.base import CardTap, ReaderStatus, ReadFailure

Event = CardTap | ReaderStatus | ReadFailure


@dataclass
class RecordingSink:
    events: list[Event] = field(default_factory=list)
    _queue: queue.Queue[Event] = field(default_factory=queue.Queue)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    raise_on_tap: bool = False

    def _put(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
        self._queue.put(event)

    def on_tap(self, tap: CardTap) -> None:
        self._put(tap)
        if self.raise_on_tap:
            raise RuntimeError("sink refuses the tap")

    def on_status(self, status: ReaderStatus) -> None:
        self._put(status)

    def on_failure(self, failure: ReadFailure) -> None:
        self._put(failure)

    def next(self, timeout: float = 8.0) -> Event:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no reader event within {timeout}s; got {self.events}") from None

    def next_outcome(self, timeout: float = 8.0) -> CardTap | ReadFailure:
        """The next tap or failure; statuses in between are skipped (they stay in ``events``)."""
        while True:
            event = self.next(timeout)
            if not isinstance(event, ReaderStatus):
                return event

    def wait_status(self, reader: str, connected: bool, timeout: float = 10.0) -> ReaderStatus:
        """Skip events until ``reader`` is reported (dis)connected; fail on a tap or failure."""
        while True:
            event = self.next(timeout)
            if isinstance(event, ReaderStatus):
                if event.reader == reader and event.connected is connected:
                    return event
                continue
            raise AssertionError(f"unexpected {event} while waiting for {reader} status")

    def taps(self) -> list[CardTap]:
        with self._lock:
            return [e for e in self.events if isinstance(e, CardTap)]
