"""Is the system clock synchronised? A Pi has no RTC, so every event carries the answer.

``auto`` asks the kernel through adjtimex(2) in read-only mode (modes = 0): the clock is
synchronised when the STA_UNSYNC bit is clear and the call does not return TIME_ERROR. This is
what chrony, systemd-timesyncd and ntpd all maintain, so it needs no daemon-specific probe.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from typing import Literal

from controller.envelope import ClockState

STA_UNSYNC = 0x0040
TIME_ERROR = 5

ClockMode = Literal["auto", "synced", "unsynced"]


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_padding", ctypes.c_int * 11),
    ]


STA_NANO = 0x2000


def kernel_clock() -> tuple[ClockState, float | None, float | None]:
    """The kernel's NTP status, the offset it is correcting and its maximum error (seconds);
    ("unsynced", None, None) if it cannot be read."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return "unsynced", None, None
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        tx = _Timex()
        rc = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return "unsynced", None, None
    if rc < 0:
        return "unsynced", None, None
    offset = tx.offset / (1e9 if tx.status & STA_NANO else 1e6)
    state: ClockState = "unsynced" if rc == TIME_ERROR or tx.status & STA_UNSYNC else "synced"
    return state, offset, tx.maxerror / 1e6


def kernel_clock_state() -> ClockState:
    """Read the kernel's NTP status; unsynced if it cannot be read."""
    return kernel_clock()[0]


class ClockStateSource:
    """Callable returning the clock state; ``auto`` re-reads the kernel at most once a second."""

    def __init__(self, mode: ClockMode) -> None:
        self.mode = mode
        self._cached: ClockState = "unsynced"
        self._checked_at = float("-inf")

    def __call__(self) -> ClockState:
        if self.mode != "auto":
            return self.mode
        now = time.monotonic()
        if now - self._checked_at >= 1.0:
            self._cached = kernel_clock_state()
            self._checked_at = now
        return self._cached
