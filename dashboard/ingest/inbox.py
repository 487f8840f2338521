"""The ingest consumer's bounded hand-over between threads: paho's thread puts, the parse thread
takes; full (by count or bytes) makes ``put`` wait, which back-pressures the broker."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """A FIFO drained in bulk (one lock round per batch, not per message), bounded in items
    and, with ``size``, in bytes: a producer waits while either bound is reached."""

    def __init__(self, maxsize: int, max_bytes: int = 0,
                 size: Callable[[T], int] | None = None) -> None:
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self._size = size
        self.bytes = 0
        self._items: deque[T] = deque()
        self._cond = threading.Condition()

    def _full(self) -> bool:
        return len(self._items) >= self.maxsize or (
            self._size is not None and self.bytes >= self.max_bytes)

    def put(self, item: T, stop: threading.Event) -> bool:
        with self._cond:
            while self._full():
                if stop.is_set():
                    return False
                self._cond.wait(0.5)
            self._items.append(item)
            if self._size is not None:
                self.bytes += self._size(item)
            if len(self._items) == 1:
                self._cond.notify_all()
        return True

    def put_many(self, items: list[T], stop: threading.Event) -> int:
        """Append all of ``items`` (waiting for room); returns how many were not taken."""
        with self._cond:
            while self._full():
                if stop.is_set():
                    return len(items)
                self._cond.wait(0.5)
            was_empty = not self._items
            self._items.extend(items)
            if self._size is not None:
                self.bytes += sum(map(self._size, items))
            if was_empty:
                self._cond.notify_all()
        return 0

    def take(self, limit: int, timeout: float, linger: float) -> list[T]:
        """Up to ``limit`` items: waits ``timeout`` for the first, then ``linger`` for more."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if self._items and len(self._items) < limit and linger > 0:
                self._cond.wait(linger)  # a trickle: let a few more arrive
            n = min(limit, len(self._items))
            out = [self._items.popleft() for _ in range(n)]
            if self._size is not None:
                self.bytes -= sum(map(self._size, out))
            if n:
                self._cond.notify_all()  # room for a blocked producer
            return out

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)
