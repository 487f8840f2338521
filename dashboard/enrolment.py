"""Card enrolment by a tap: a short window an editor opens at one reader.

A reader is a node and one of its reader names (``gw1:door-in``): the same reader name on
another node (a USB agent, a printer node, a second gateway) is another reader. The editor
opens a window of ``WINDOW_S`` seconds at the reader they chose; the first ``door.access`` the
ingest stores from exactly that node and reader while the window is open becomes the
*candidate*, and nothing is bound until the editor, shown the card, the reader and the time of
the tap, confirms it (within ``CONFIRM_S``). Every other ``door.access`` heard meanwhile is
ignored and counted by reason: another node, another reader, outside the window (it reached
the dashboard before or after the window, or the node dates it outside the window by more
than the clock slack), or after the candidate was taken.

The windows live in this process (``EnrolDesk``), fed by the bus in the ingest's thread
(``Bus.listen``): a restart forgets them, which only ever means that nothing is bound.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from controller.envelope import parse_ts
from controller.events import DoorAccess

WINDOW_S = 30
CONFIRM_S = 120
# a node's clock may differ from ours this much before the ingest raises clock_skew
CLOCK_SLACK_S = 120
Verdict = Literal["match", "other_node", "other_reader", "outside_window", "after_capture"]
_NODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class EnrolError(ValueError):
    """An enrolment request that cannot be honoured (its text names what to do)."""


@dataclass(frozen=True)
class ReaderRef:
    """One reader: the node that owns it and the reader's name on that node."""

    node: str
    reader: str

    @property
    def key(self) -> str:
        return f"{self.node}:{self.reader}"

    @classmethod
    def parse(cls, key: str) -> ReaderRef:
        node, sep, reader = key.partition(":")
        if not sep or not _NODE.match(node) or not reader or len(reader) > 128:
            raise EnrolError("choose a reader from the list")
        return cls(node, reader)


@dataclass(frozen=True)
class Tap:
    """A card presented at a reader, as a stored ``door.access`` event says."""

    node: str
    seq: int
    reader: str
    uid: str
    ts: datetime
    door: str | None = None
    credential: str = "uid"  # the card type that proved a secroom key at this tap, else "uid"
    key_id: str | None = None


def tap_from_event(data: dict[str, Any]) -> Tap | None:
    """The tap in a bus ``event`` message, or None when it is not a usable door.access."""
    if data.get("kind") != "door.access":
        return None
    try:  # the same model the gateway emitted (controller.events)
        access = DoorAccess.model_validate(data.get("data"))
    except ValidationError:
        return None  # stored and counted by the ingest; no card to enrol from it
    node, seq, reader, uid = data.get("node"), data.get("seq"), access.reader, access.card
    try:
        ts = parse_ts(data["ts"]) if isinstance(data.get("ts"), str) else data.get("ts")
    except ValueError:
        return None
    if not (isinstance(node, str) and isinstance(seq, int) and isinstance(reader, str)
            and isinstance(uid, str) and uid and isinstance(ts, datetime)):
        return None
    door = data.get("door")
    proved = access.credential == "verified" and access.card_type in ("desfire", "felica_lite_s")
    return Tap(node, seq, reader, uid, ts, door if isinstance(door, str) else None,
               credential=access.card_type if proved and access.card_type else "uid",
               key_id=access.credential_key if proved else None)


@dataclass
class EnrolWindow:
    person_id: str
    reader: ReaderRef
    opened_by: str
    opened_at: datetime
    closes_at: datetime
    label: str = ""
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    candidate: Tap | None = None
    captured_at: datetime | None = None
    closed: bool = False
    ignored: Counter[str] = field(default_factory=Counter)

    def state(self, now: datetime) -> Literal["open", "captured", "expired", "closed"]:
        """Pure: where the window stands at ``now``."""
        if self.closed:
            return "closed"
        if self.candidate is not None and self.captured_at is not None:
            confirmable = now < self.captured_at + timedelta(seconds=CONFIRM_S)
            return "captured" if confirmable else "expired"
        return "open" if now < self.closes_at else "expired"

    def seconds_left(self, now: datetime) -> int:
        return max(0, int((self.closes_at - now).total_seconds() + 0.999))

    def heard_until(self) -> datetime:
        """Taps are judged (and counted) up to here; then the window is forgotten."""
        return max(self.closes_at, self.captured_at or self.closes_at) + timedelta(
            seconds=CONFIRM_S)


def judge(window: EnrolWindow, tap: Tap, now: datetime) -> Verdict:
    """Pure: what a tap heard at ``now`` means for ``window``."""
    if tap.node != window.reader.node:
        return "other_node"
    if tap.reader != window.reader.reader:
        return "other_reader"
    if window.candidate is not None:
        return "after_capture"
    slack = timedelta(seconds=CLOCK_SLACK_S)
    arrived_inside = window.opened_at <= now < window.closes_at and not window.closed
    dated_inside = window.opened_at - slack <= tap.ts < window.closes_at + slack
    return "match" if arrived_inside and dated_inside else "outside_window"


class EnrolDesk:
    """The enrolment windows open in this process: one per editor at a time, one editor per
    reader at a time."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, EnrolWindow] = {}  # by the editor's user name
        self.listening = False

    def attach(self, bus: Any) -> None:
        """Hear every stored event from ``bus`` (without a bus no window can capture)."""
        listen = getattr(bus, "listen", None)
        if listen is not None:
            listen(("event",), lambda msg: self.hear(msg.data))
            self.listening = True

    def open(self, *, user: str, person_id: str, reader: ReaderRef, label: str,
             now: datetime) -> tuple[EnrolWindow, EnrolWindow | None]:
        """Open a window (the editor's previous one closes); the new and the replaced one."""
        if not self.listening:
            raise EnrolError("this dashboard process does not receive events")
        with self._lock:
            self._forget(now)
            for other in self._windows.values():
                if (other.opened_by != user and other.reader == reader
                        and other.state(now) in ("open", "captured")):
                    raise EnrolError(f"{other.opened_by} is enrolling at this reader until "
                                     f"{other.heard_until().isoformat(timespec='seconds')}")
            window = EnrolWindow(person_id, reader, user, now,
                                 now + timedelta(seconds=WINDOW_S), label=label)
            previous = self._windows.get(user)
            if previous is not None:
                previous.closed = True
            self._windows[user] = window
            return window, previous

    def window(self, user: str, person_id: str) -> EnrolWindow | None:
        with self._lock:
            window = self._windows.get(user)
            return window if window is not None and window.person_id == person_id else None

    def close(self, user: str, person_id: str) -> EnrolWindow | None:
        with self._lock:
            window = self._windows.get(user)
            if window is None or window.person_id != person_id:
                return None
            window.closed = True
            del self._windows[user]
            return window

    def candidate(self, user: str, person_id: str, window_id: str, uid: str,
                  now: datetime) -> tuple[EnrolWindow, Tap]:
        """The tap the editor confirms: it must be the one they were shown, still in time."""
        window = self.window(user, person_id)
        if window is None or window.id != window_id:
            raise EnrolError("this enrolment window is closed; open a new one")
        if window.state(now) != "captured" or window.candidate is None:
            raise EnrolError("no card to confirm in this window (it expired); open a new one")
        if window.candidate.uid != uid:
            raise EnrolError("the card shown is not the card presented; open a new window")
        return window, window.candidate

    def hear(self, data: dict[str, Any]) -> None:
        """Judge one stored event against every window (in the publisher's thread)."""
        tap = tap_from_event(data)
        if tap is None:
            return
        now = self._clock()
        with self._lock:
            for window in self._windows.values():
                if window.closed or now >= window.heard_until():
                    continue
                verdict = judge(window, tap, now)
                if verdict == "match":
                    window.candidate, window.captured_at = tap, now
                else:
                    window.ignored[verdict] += 1

    def _forget(self, now: datetime) -> None:
        for user in [u for u, w in self._windows.items() if now >= w.heard_until()]:
            del self._windows[user]
