"""Timers the door schedules through: ``ThreadClock`` in production, ``ManualClock`` in tests
(due callbacks run inside ``advance()``, in order). Not ``controller.clock``, which is clock
sync."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def call_later(self, delay: float, fn: Callable[[], None]) -> Cancellable: ...


class ThreadClock:
    """Real time: one daemon ``threading.Timer`` per scheduled call."""

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, fn: Callable[[], None]) -> Cancellable:
        timer = threading.Timer(max(delay, 0.0), fn)
        timer.daemon = True
        timer.start()
        return timer


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock a test drives: scheduled calls run inside ``advance()``, in due order."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._queue: list[tuple[float, int, Callable[[], None], _Handle]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def call_later(self, delay: float, fn: Callable[[], None]) -> Cancellable:
        handle = _Handle()
        heapq.heappush(self._queue, (self._now + max(delay, 0.0), next(self._seq), fn, handle))
        return handle

    def advance(self, seconds: float) -> None:
        target = self._now + seconds
        while self._queue and self._queue[0][0] <= target:
            due, _, fn, handle = heapq.heappop(self._queue)
            self._now = max(self._now, due)
            if not handle.cancelled:
                fn()
        self._now = target

    @property
    def pending(self) -> int:
        return sum(1 for *_, h in self._queue if not h.cancelled)
