"""Home Assistant MQTT discovery: doors, nodes and lockdown as Home Assistant entities.

Opt-in (``[dashboard.home_assistant] enabled = true``; off by default) and one-way. Through
the dashboard's own broker link it publishes, retained, Home Assistant's discovery configs
(``<prefix>/<component>/secroom_<site>/<object_id>/config``, as Home Assistant's MQTT discovery
documents them) and the states they point to under ``secroom/v1/<site>/hass/``:

* each door: a ``lock`` (LOCKED / UNLOCKED, from the gateway's health and its grants) and a
  ``binary_sensor`` with device class ``door`` (ON = open, from door.opened / closed / forced /
  held_open);
* each approved node: a ``binary_sensor`` with device class ``connectivity`` (its retained
  online / offline state);
* the site's lockdown: a ``binary_sensor`` (ON while the site or any door is locked down);
* the dashboard's availability (``online``, and ``offline`` when it stops), which every entity
  follows.

No person or card data ever goes there: the payloads are built only from door and node ids,
their display names and fixed words (a test checks every published byte). Home Assistant's lock
needs a command topic; nothing subscribes to it: a door never opens from outside the room.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from controller.mqtt import MqttError
from dashboard.models.events import StoredEvent
from dashboard.models.nodes import Node
from dashboard.models.people import Door, SiteSettings
from dashboard.names import Names

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], None]  # retained publish on the dashboard's broker link
CONTACT_KINDS = {"door.opened": "ON", "door.forced": "ON", "door.held_open": "ON",
                 "door.closed": "OFF"}
RETRY_S = 2.0


def object_id(text: str) -> str:
    """An id Home Assistant accepts in a discovery topic ([a-zA-Z0-9_-]); a changed one gets a
    short hash of the original so that two ids never collide."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", text)[:48]
    if safe == text:
        return safe
    return f"{safe}_{hashlib.sha256(text.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Room:
    """What Home Assistant is shown: doors and nodes with their display names, and states."""

    doors: dict[str, str]  # door id -> display name
    nodes: dict[str, str]  # node name -> display name
    lock: dict[str, str]  # door id -> LOCKED | UNLOCKED
    contact: dict[str, str]  # door id -> ON (open) | OFF
    online: dict[str, bool]  # node name -> online
    lockdown: bool


class Topics:
    def __init__(self, site: str, prefix: str) -> None:
        self.site, self.prefix = site, prefix
        self.root = f"secroom/v1/{site}/hass"
        self.node_id = f"secroom_{object_id(site)}"
        self.availability = f"{self.root}/status"

    def config(self, component: str, oid: str) -> str:
        return f"{self.prefix}/{component}/{self.node_id}/{oid}/config"

    def lock(self, door: str) -> str:
        return f"{self.root}/door/{object_id(door)}/lock"

    def contact(self, door: str) -> str:
        return f"{self.root}/door/{object_id(door)}/contact"

    def node(self, name: str) -> str:
        return f"{self.root}/node/{object_id(name)}"

    @property
    def lockdown(self) -> str:
        return f"{self.root}/lockdown"


def discovery(t: Topics, room: Room) -> dict[str, dict[str, Any]]:
    """Discovery topic -> config payload for every entity of ``room`` (pure)."""
    site_device = {"identifiers": [t.node_id], "name": f"secroom {t.site}",
                   "manufacturer": "secroom", "model": "secure room"}
    common = {"availability_topic": t.availability, "payload_available": "online",
              "payload_not_available": "offline", "qos": 1}
    out: dict[str, dict[str, Any]] = {}
    for door, name in sorted(room.doors.items()):
        oid = f"door_{object_id(door)}"
        device = {"identifiers": [f"{t.node_id}_{oid}"], "name": name,
                  "manufacturer": "secroom", "model": "door", "via_device": t.node_id}
        out[t.config("lock", oid)] = {
            **common, "name": "Lock", "unique_id": f"{t.node_id}_{oid}_lock",
            "state_topic": t.lock(door), "command_topic": f"{t.lock(door)}/set",
            "state_locked": "LOCKED", "state_unlocked": "UNLOCKED", "optimistic": False,
            "device": device}
        out[t.config("binary_sensor", f"{oid}_contact")] = {
            **common, "name": "Door", "unique_id": f"{t.node_id}_{oid}_contact",
            "device_class": "door", "state_topic": t.contact(door), "payload_on": "ON",
            "payload_off": "OFF", "device": device}
    for node, name in sorted(room.nodes.items()):
        oid = f"node_{object_id(node)}"
        out[t.config("binary_sensor", oid)] = {
            **common, "name": name, "unique_id": f"{t.node_id}_{oid}",
            "device_class": "connectivity", "entity_category": "diagnostic",
            "state_topic": t.node(node), "payload_on": "ON", "payload_off": "OFF",
            "device": site_device}
    out[t.config("binary_sensor", "lockdown")] = {
        **common, "name": "Lockdown", "unique_id": f"{t.node_id}_lockdown",
        "icon": "mdi:lock-alert", "state_topic": t.lockdown, "payload_on": "ON",
        "payload_off": "OFF", "device": site_device}
    return out


def states(t: Topics, room: Room) -> dict[str, str]:
    """State topic -> payload for every entity of ``room`` (pure)."""
    out = {t.lock(d): room.lock.get(d, "LOCKED") for d in room.doors}
    out |= {t.contact(d): room.contact[d] for d in room.doors if d in room.contact}
    out |= {t.node(n): "ON" if room.online.get(n) else "OFF" for n in room.nodes}
    out[t.lockdown] = "ON" if room.lockdown else "OFF"
    return out


def load_room(db: Session, site: str, language: str) -> Room:
    names = Names.load(db, language)
    doors = {d.id: names.door(d.id) for d in db.scalars(select(Door).order_by(Door.id))}
    nodes, online, lock = {}, {}, {}
    for node in db.scalars(select(Node).where(Node.site == site,
                                              Node.key_status == "approved")):
        nodes[node.name] = names.node(node.name)
        online[node.name] = node.state == "online"
        health = node.health.get("health") if isinstance(node.health, dict) else None
        reported = health.get("doors") if isinstance(health, dict) else None
        for door, state in (reported or {}).items() if isinstance(reported, dict) else ():
            if door in doors and state in ("locked", "unlocked"):
                lock[door] = state.upper()
    contact = {}
    for door in doors:
        kind = db.scalar(select(StoredEvent.kind)
                         .where(StoredEvent.door == door,
                                StoredEvent.kind.in_(sorted(CONTACT_KINDS)))
                         .order_by(StoredEvent.ts.desc()).limit(1))
        if kind is not None:
            contact[door] = CONTACT_KINDS[kind]
    settings = db.get(SiteSettings, site)
    lockdown = bool(settings and (settings.lockdown or settings.lockdown_doors))
    return Room(doors, nodes, lock, contact, online, lockdown)


def event_states(t: Topics, events: Iterable[dict[str, Any]], doors: Iterable[str]
                 ) -> dict[str, str]:
    """State changes stored events announce (bus "event" messages), for known doors (pure)."""
    known = set(doors)
    out: dict[str, str] = {}
    for event in events:
        door, kind, raw = event.get("door"), event.get("kind"), event.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if not isinstance(door, str) or door not in known:
            continue
        if kind in CONTACT_KINDS:
            out[t.contact(door)] = CONTACT_KINDS[kind]
        elif (kind == "door.access" and data.get("granted") is True) or kind == "door.rex":
            out[t.lock(door)] = "UNLOCKED"  # relocked: the gateway's next health says so
        elif kind == "door.lockdown" and data.get("on") is True:
            out[t.lock(door)] = "LOCKED"
    return out


class HassBridge:
    """The runtime part: publishes discovery and states, follows the bus, ends offline."""

    def __init__(self, sessionmaker: Any, bus: Any, publish: Publish, *, site: str,
                 prefix: str = "homeassistant", language: str = "ja",
                 refresh_s: float = 10.0) -> None:
        self.sessionmaker = sessionmaker
        self.bus = bus
        self.publish = publish
        self.topics = Topics(site, prefix)
        self.language = language
        self.refresh_s = refresh_s
        self.sent: dict[str, bytes] = {}  # topic -> payload last published (retained)
        self.doors: set[str] = set()
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sub: Any = None

    def start(self) -> None:
        self._stop.clear()
        self._sub = self.bus.subscribe(("event", "node", "policy"), maxsize=10_000)
        self._thread = threading.Thread(target=self._run, name="hass", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._sub is not None:
            self._sub.close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._send({self.topics.availability: b"offline"})

    def _run(self) -> None:
        ok = self.sync()
        while not self._stop.is_set():
            msg = self._sub.get(timeout=self.refresh_s if ok else RETRY_S)
            if self._stop.is_set():
                return
            batch = [msg, *self._sub.drain()] if msg is not None else []
            events = [m.data for m in batch if m.topic == "event"]
            if msg is None or len(events) < len(batch) or not ok:
                ok = self.sync()  # node, policy (lockdown) or a periodic look: all of it
            changes = event_states(self.topics, events, self.doors)
            ok = self._send({t: p.encode() for t, p in changes.items()}) and ok

    def sync(self) -> bool:
        """Publish every config and state that changed since last sent; remove entities that
        are gone (an empty retained config). False if the database or broker failed."""
        try:
            with self.sessionmaker() as db:
                room = load_room(db, self.topics.site, self.language)
        except SQLAlchemyError as exc:
            self.errors += 1
            log.warning("Home Assistant sync: database unavailable (%s)", type(exc).__name__)
            return False
        self.doors = set(room.doors)
        configs = {topic: json.dumps(cfg, ensure_ascii=False, sort_keys=True).encode()
                   for topic, cfg in discovery(self.topics, room).items()}
        gone = {topic: b"" for topic, payload in self.sent.items()
                if topic.endswith("/config") and payload and topic not in configs}
        now = {self.topics.availability: b"online", **configs, **gone,
               **{t: p.encode() for t, p in states(self.topics, room).items()}}
        return self._send(now)

    def _send(self, messages: dict[str, bytes]) -> bool:
        for topic, payload in messages.items():
            if self.sent.get(topic) == payload:
                continue
            try:
                self.publish(topic, payload)
            except MqttError:
                self.errors += 1
                return False  # kept unsent: the next sync sends it
            self.sent[topic] = payload
        return True
