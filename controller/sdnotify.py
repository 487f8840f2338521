"""systemd service notifications (sd_notify(3)): READY=1 once a node is up, WATCHDOG=1 from its
main loop while it is healthy, STOPPING=1 when it shuts down.

python-systemd's ``systemd.daemon.notify`` is used when it can be imported (Debian's
python3-systemd, or PyPI's systemd-python, which ships only as an sdist needing libsystemd-dev,
pkg-config and a compiler, so it is not a dependency). Otherwise the documented protocol
(sd_notify(3), "NOTIFY_SOCKET"): one datagram of newline-separated assignments to the AF_UNIX
socket named by ``$NOTIFY_SOCKET``, where a leading ``@`` means the abstract namespace. Outside
systemd (no ``$NOTIFY_SOCKET``) nothing is sent and nothing fails.

The watchdog interval comes from ``$WATCHDOG_USEC`` (for this process only, when
``$WATCHDOG_PID`` is set); as sd_watchdog_enabled(3) advises, the node pings at half of it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any


def _library_notify() -> Callable[[str], Any] | None:
    try:
        from systemd import daemon  # python-systemd, when installed
    except ImportError:
        return None
    return getattr(daemon, "notify", None)


def send(state: str, env: Mapping[str, str] | None = None) -> bool:
    """The sd_notify protocol itself: True if a datagram went to ``$NOTIFY_SOCKET``."""
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    target = "\0" + address[1:] if address[0] == "@" else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(target)
            sock.sendall(state.encode())
        except OSError:  # systemd gone, or not listening: a notification is never fatal
            return False
    return True


def notify(state: str) -> bool:
    """Send ``state`` (e.g. "READY=1\\nSTATUS=running") to systemd, if it is listening."""
    library = _library_notify()
    if library is not None:
        with contextlib.suppress(OSError, ValueError):
            return bool(library(state))
        return False
    return send(state)


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half the unit's WatchdogSec), or None if none is
    asked of this process."""
    env = os.environ if env is None else env
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


SIGNAL_SLICE_S = 0.25  # the longest the main thread waits at once (see ``wait_for_stop``)


def wait_for_stop(stop: threading.Event, timeout: float | None = None) -> bool:
    """``stop.wait(timeout)`` for a process's main thread, in slices of ``SIGNAL_SLICE_S``.

    Python runs a signal handler (the one that sets ``stop`` on SIGTERM) only when the main
    thread next runs Python code. The kernel hands a process-directed signal to any thread
    that does not block it; when that is another thread, CPython only notes it, and a main
    thread blocked in an unbounded ``Event.wait()`` never wakes to run the handler. Seen here:
    a gateway whose main thread sat in ``stop.wait()`` for 20 s and more after SIGTERM while
    every other thread idled (about 1 stop in 13 on a loaded machine). A bounded wait returns
    within a slice, the pending handler runs, and the next slice sees ``stop`` set.
    """
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        step = SIGNAL_SLICE_S if end is None else min(SIGNAL_SLICE_S, end - time.monotonic())
        if step <= 0:
            return stop.is_set()
        if stop.wait(step):
            return True


class ServiceNotifier:
    """READY, then the watchdog loop (the node's main loop waits here), then STOPPING."""

    def __init__(self, *, healthy: Callable[[], bool] = lambda: True,
                 interval: float | None = None) -> None:
        self.healthy = healthy
        self.interval = watchdog_interval() if interval is None else interval
        self.pings = 0
        self.missed = 0  # ticks where the node was not healthy: no ping, systemd restarts it

    def ready(self, status: str) -> None:
        notify(f"READY=1\nSTATUS={status}")

    def run(self, stop: threading.Event) -> None:
        """Wait for ``stop``; meanwhile ping the watchdog while ``healthy()`` holds."""
        if self.interval is None:
            wait_for_stop(stop)
            return
        while not wait_for_stop(stop, self.interval):
            if self.healthy():
                notify("WATCHDOG=1")
                self.pings += 1
            else:
                self.missed += 1

    def stopping(self) -> None:
        notify("STOPPING=1")


class LoopBeat:
    """For a node whose main loop lives in a feature package (the USB agent's): the loop calls
    ``beat()`` on every pass; the first sends READY=1, later ones WATCHDOG=1 at most once per
    interval and only while ``healthy()``. A loop that hangs stops beating, and systemd
    restarts the unit after WatchdogSec."""

    def __init__(self, status: str, *, healthy: Callable[[], bool] = lambda: True,
                 interval: float | None = None,
                 monotonic: Callable[[], float] | None = None) -> None:
        import time

        self.status = status
        self.healthy = healthy
        self.interval = watchdog_interval() if interval is None else interval
        self._monotonic = monotonic or time.monotonic
        self._ready = False
        self._pinged_at = 0.0
        self.pings = 0

    def beat(self) -> None:
        now = self._monotonic()
        if not self._ready:
            self._ready = True
            self._pinged_at = now
            notify(f"READY=1\nSTATUS={self.status}")
            return
        if self.interval is not None and now - self._pinged_at >= self.interval \
                and self.healthy():
            self._pinged_at = now
            notify("WATCHDOG=1")
            self.pings += 1
