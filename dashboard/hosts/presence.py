"""The signed presence statement the host agents follow (controller.host.presence).

Published retained on ``secroom/v1/{site}/presence``, signed with the policy key: at start,
within a moment of every stored door.access event that changes who is inside, and at least every
``heartbeat_s`` (the agents treat a statement older than their ``presence_max_age_s`` as
unknown presence, so a dashboard that stops is noticed). It lists the people with an open
presence interval (at the room's doors when ``room_doors`` is set) and the approved door nodes
with their public keys, so that the agents can check the doors' own events too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from controller.envelope import now_utc
from controller.host.presence import PresenceStatement, presence_topic, sign_presence
from dashboard.models.events import DoorAccess, Presence
from dashboard.models.nodes import Node

Publish = Callable[[str, bytes, bool], Any]


def present_people(session: Session, room_doors: Sequence[str] = (),
                   site: str | None = None) -> list[str]:
    """Who is inside now; with ``site``, inside that site's rooms only (entered through one of
    its nodes: a central dashboard publishes one statement per site, and a person inside the
    Nagoya room is not in the Osaka room)."""
    q = select(Presence.person_id, Presence.enter_ref).where(Presence.left_at.is_(None),
                                                             Presence.entered_at.is_not(None))
    if room_doors:
        q = q.where(Presence.door.in_(list(room_doors)))
    rows = session.execute(q).all()  # open intervals: the people inside, a handful
    if site is not None:
        nodes = set(session.scalars(select(Node.name).where(Node.site == site)))
        rows = [r for r in rows if (r.enter_ref or "").rpartition(":")[0] in nodes]
    return sorted({r.person_id for r in rows})


def door_nodes(session: Session, site: str | None = None) -> dict[str, str]:
    """Approved nodes (of ``site``) that have sent door.access events: name -> public key."""
    q = select(Node.name, Node.public_key).where(
        Node.key_status == "approved", Node.public_key.is_not(None),
        exists().where(DoorAccess.node == Node.name))
    if site is not None:
        q = q.where(Node.site == site)
    return {name: key for name, key in session.execute(q)}


class PresencePublisher:
    def __init__(self, sm: sessionmaker[Session], key: Ed25519PrivateKey, *, site: str,
                 publish: Publish, heartbeat_s: float = 60.0, room_doors: Sequence[str] = (),
                 clock: Callable[[], datetime] = now_utc, bus: Any = None) -> None:
        self.sm = sm
        self.key = key
        self.site = site
        self.publish = publish
        self.heartbeat_s = heartbeat_s
        self.room_doors = tuple(room_doors)
        self.clock = clock
        self.bus = bus
        self.topic = presence_topic(site)
        self.published = 0
        self.last_error: str | None = None
        self._last: tuple[tuple[str, ...], tuple[tuple[str, str], ...]] | None = None
        self._last_serial = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unlisten: Callable[[], None] | None = None

    def statement(self) -> PresenceStatement:
        now = self.clock()
        with self.sm() as session:
            present = present_people(session, self.room_doors, self.site)
            nodes = door_nodes(session, self.site)
        serial = max(int(now.timestamp() * 1_000_000), self._last_serial + 1)
        self._last_serial = serial
        return PresenceStatement(site=self.site, serial=serial, issued_at=now, present=present,
                                 door_nodes=nodes, heartbeat_s=self.heartbeat_s)

    def publish_now(self) -> PresenceStatement:
        st = self.statement()
        self.publish(self.topic, sign_presence(st, self.key), True)
        self._last = (tuple(st.present), tuple(sorted(st.door_nodes.items())))
        self.published += 1
        return st

    def poll(self) -> bool:
        """Publish if who is inside (or the door nodes) changed; True if it did."""
        with self.sm() as session:
            now = (tuple(present_people(session, self.room_doors, self.site)),
                   tuple(sorted(door_nodes(session, self.site).items())))
        if now == self._last:
            return False
        self.publish_now()
        return True

    def _on_bus(self, msg: Any) -> None:
        door_tap = msg.topic == "event" and msg.data.get("kind") == "door.access"
        if door_tap or msg.topic == "node":  # who is inside, or which door nodes, may change
            self._wake.set()

    def start(self) -> None:
        if self.bus is not None:
            self._unlisten = self.bus.listen(("event", "node"), self._on_bus)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="presence-publisher",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._unlisten is not None:
            self._unlisten()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        next_beat = 0.0
        while not self._stop.is_set():
            try:
                if self._wake.is_set() or self._last is None:
                    self._wake.clear()
                    self.poll()
                if time.monotonic() >= next_beat:
                    self.publish_now()
                    next_beat = time.monotonic() + self.heartbeat_s
                self.last_error = None
            except Exception as exc:  # a broker or database hiccup: shown, retried
                self.last_error = f"{type(exc).__name__}: {exc}"
            self._wake.wait(min(self.heartbeat_s, 1.0) if self.last_error else
                            max(0.0, next_beat - time.monotonic()))
