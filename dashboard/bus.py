"""In-process pub/sub of newly stored events, anomalies, node changes, ended sessions and stored
camera stills (feeds the live UI, and card enrolment).

Publishers (the ingest thread) never block: each subscriber has a bounded queue and, when it is
full, the oldest message is dropped and counted on the subscription (a slow browser must not
stall ingest). Subscribers read either blocking (``get``) or from asyncio (``aget``). A
listener (``listen``) is called in the publisher's thread instead: it must be quick and must
not block (card enrolment's windows judge each tap that way); its errors are counted, never
raised into the publisher.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Topic = Literal["event", "anomaly", "node", "policy", "session", "camera"]
Listener = Callable[["BusMessage"], None]


@dataclass(frozen=True)
class BusMessage:
    topic: Topic
    data: dict[str, Any]
    id: int = 0


@dataclass(eq=False)
class Subscription:
    bus: Bus
    topics: frozenset[str]
    maxsize: int
    dropped: int = 0
    _items: deque[BusMessage] = field(default_factory=deque)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _loop: asyncio.AbstractEventLoop | None = None
    _async_event: asyncio.Event | None = None
    closed: bool = False

    def _deliver(self, msg: BusMessage) -> None:
        with self._cond:
            if len(self._items) >= self.maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(msg)
            self._cond.notify_all()
        loop, ev = self._loop, self._async_event
        if loop is not None and ev is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop shut down since the check
                loop.call_soon_threadsafe(ev.set)

    def get(self, timeout: float | None = None) -> BusMessage | None:
        """The next message, or None after ``timeout`` seconds (or when closed)."""
        with self._cond:
            if not self._items and not self.closed:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def drain(self) -> list[BusMessage]:
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items

    async def aget(self, timeout: float | None = None) -> BusMessage | None:
        """Like ``get`` for asyncio code (the SSE endpoint); binds to the running loop."""
        if self._async_event is None:
            self._loop = asyncio.get_running_loop()
            self._async_event = asyncio.Event()
        while True:
            with self._cond:
                if self._items:
                    return self._items.popleft()
                if self.closed:
                    return None
                self._async_event.clear()
            try:
                await asyncio.wait_for(self._async_event.wait(), timeout)
            except TimeoutError:
                return None

    def close(self) -> None:
        self.bus.unsubscribe(self)
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        if self._loop is not None and self._async_event is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._async_event.set)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._ids = itertools.count(1)
        self._listeners: list[tuple[frozenset[str], Listener]] = []
        self.published = 0
        self.listener_errors = 0

    def subscribe(
        self, topics: tuple[str, ...] = ("event", "anomaly", "node", "policy"), maxsize: int = 1000
    ) -> Subscription:
        sub = Subscription(bus=self, topics=frozenset(topics), maxsize=maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def listen(self, topics: tuple[str, ...], listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every message of ``topics``, in the publisher's thread;
        returns the function that stops it."""
        entry = (frozenset(topics), listener)
        with self._lock:
            self._listeners.append(entry)

        def stop() -> None:
            with self._lock:
                if entry in self._listeners:
                    self._listeners.remove(entry)

        return stop

    def publish(self, topic: Topic, data: dict[str, Any]) -> BusMessage:
        msg = BusMessage(topic=topic, data=data, id=next(self._ids))
        with self._lock:
            subs = [s for s in self._subs if topic in s.topics]
            listeners = [fn for topics, fn in self._listeners if topic in topics]
            self.published += 1
        for sub in subs:
            sub._deliver(msg)
        for fn in listeners:
            try:
                fn(msg)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the ingest
                with self._lock:
                    self.listener_errors += 1
        return msg

    def close(self) -> None:
        """End every subscription (live streams return): the server is stopping."""
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.close()

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)
