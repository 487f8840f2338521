"""Home Assistant MQTT discovery through the dashboard's real broker link (Mosquitto): retained
discovery configs for each door (lock + door contact), each node (connectivity) and the
lockdown; states that follow the node's health and stored events; offline when the dashboard
stops; off by default; and no person id, name or card UID in any topic or payload."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.mqtt import MqttLink, MqttSettings
from dashboard import services
from dashboard.hass import HassBridge, Topics, object_id
from dashboard.models.people import Card, Door, Person
from dashboard.runtime import DashboardRuntime, build_runtime
from dashboard.settings import DashboardSettings, HomeAssistantSettings, SettingsError
from tests.dashboard.conftest import SITE, FakeNode
from tests.dashboard.ingest.test_consumer import NodeSide
from tests.dashboard.web.conftest import make_db
from tests.support.mosquitto import Broker

pytestmark = pytest.mark.integration
PERSON_ID, PERSON_NAME, CARD = "p-tanaka", "田中 花子", "04A1B2C3D4E5F6"


class Watcher:
    """Everything published under homeassistant/ and the site's hass/ states, in order."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()
        self.link = MqttLink(MqttSettings(port=port), client_id="home-assistant")
        for topic_filter in ("homeassistant/#", f"secroom/v1/{SITE}/hass/#"):
            self.link.subscribe(topic_filter, self._on)
        self.link.start()
        assert self.link.wait_subscribed(30)

    def _on(self, topic: str, payload: bytes) -> None:
        with self.cond:
            self.messages.append((topic, payload))
            self.cond.notify_all()

    def last(self, topic: str) -> bytes | None:
        with self.cond:
            return next((p for t, p in reversed(self.messages) if t == topic), None)

    def wait(self, topic: str, payload: bytes | Callable[[bytes], bool],
             timeout: float = 30) -> bytes:
        ok = payload if callable(payload) else (lambda p: p == payload)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = self.last(topic)
                if got is not None and ok(got):
                    return got
                left = deadline - time.monotonic()
                assert left > 0, f"{topic}: last {got!r}"
                self.cond.wait(left)


def _seed(runtime: DashboardRuntime, node: FakeNode) -> None:
    now = datetime.now(UTC)
    with runtime.sessionmaker() as db:
        db.add(Door(id="d1", name="サーバー室"))
        db.add(Door(id="rack A/1", name="ラック"))  # an id HA would refuse as it is
        db.add(Person(id=PERSON_ID, name=PERSON_NAME, active=True, created_at=now,
                      cards=[Card(uid=CARD, enrolled_at=now, enrolled_by="admin")]))
        db.commit()
        node.enrol(db)


@pytest.fixture
def room(tmp_path: Path, broker: Broker
         ) -> Iterator[tuple[DashboardRuntime, Watcher, FakeNode]]:
    settings = DashboardSettings(data_dir=tmp_path / "dash", site=SITE,
                                 mqtt=MqttSettings(port=broker.port),
                                 home_assistant=HomeAssistantSettings(enabled=True))
    make_db(settings)
    runtime = build_runtime(settings)
    bridge = next(p for p in runtime.parts if isinstance(p, HassBridge))
    bridge.refresh_s = 0.5  # lockdown is picked up by the periodic look
    watcher = Watcher(broker.port)
    node = FakeNode("gw1")
    _seed(runtime, node)
    runtime.start()
    try:
        yield runtime, watcher, node
    finally:
        runtime.stop()
        watcher.link.stop()


def test_doors_nodes_and_lockdown_reach_home_assistant_without_people(
        room: tuple[DashboardRuntime, Watcher, FakeNode], broker: Broker) -> None:
    runtime, ha, node = room
    t = Topics(SITE, "homeassistant")
    node_id = f"secroom_{SITE}"
    ha.wait(t.availability, b"online")
    lock_cfg = json.loads(ha.wait(f"homeassistant/lock/{node_id}/door_d1/config", bool))
    assert lock_cfg["state_topic"] == t.lock("d1")
    assert lock_cfg["availability_topic"] == t.availability
    assert lock_cfg["device"]["name"] == "サーバー室"
    assert lock_cfg["unique_id"] == f"{node_id}_door_d1_lock"
    contact_cfg = json.loads(ha.wait(
        f"homeassistant/binary_sensor/{node_id}/door_d1_contact/config", bool))
    assert contact_cfg["device_class"] == "door"
    rack = object_id("rack A/1")
    assert rack.startswith("rack_A_1_")
    ha.wait(f"homeassistant/lock/{node_id}/door_{rack}/config", bool)
    node_cfg = json.loads(ha.wait(f"homeassistant/binary_sensor/{node_id}/node_gw1/config",
                                  bool))
    assert node_cfg["device_class"] == "connectivity"
    ha.wait(f"homeassistant/binary_sensor/{node_id}/lockdown/config", bool)
    ha.wait(t.node("gw1"), b"OFF")  # never heard from yet
    ha.wait(t.lockdown, b"OFF")

    link = next(p for p in runtime.parts if type(p).__name__ == "LinkProcess")
    assert link.wait_subscribed(30)
    side = NodeSide(broker, node)
    side.state(health={"doors": {"d1": "locked"}})
    ha.wait(t.node("gw1"), b"ON")
    ha.wait(t.lock("d1"), b"LOCKED")
    side.send(node.access(PERSON_ID, door="d1"))
    ha.wait(t.lock("d1"), b"UNLOCKED")
    side.send(node.event("door.opened", {"door": "d1", "via": "grant",
                                         "person_id": PERSON_ID}))
    ha.wait(t.contact("d1"), b"ON")
    side.send(node.event("door.closed", {"door": "d1", "open_s": 3.0, "via": "grant"}))
    ha.wait(t.contact("d1"), b"OFF")
    with runtime.sessionmaker.begin() as db:
        services.set_lockdown(db, "admin", SITE, {"lockdown": True, "doors": [],
                                                  "reason": f"{PERSON_NAME} lost a card"})
    ha.wait(t.lockdown, b"ON")
    runtime.stop()
    ha.wait(t.availability, b"offline")
    with ha.cond:
        everything = list(ha.messages)
    assert len(everything) >= 12
    for topic, payload in everything:
        for personal in (PERSON_ID, PERSON_NAME, "田中", CARD, "01020304"):
            assert personal not in topic and personal not in payload.decode(), (topic, payload)


def test_off_by_default_and_needs_the_broker(tmp_path: Path) -> None:
    settings = DashboardSettings(data_dir=tmp_path / "d")
    assert settings.home_assistant.enabled is False
    assert not any(isinstance(p, HassBridge) for p in build_runtime(settings).parts)
    with pytest.raises((SettingsError, ValueError), match="home_assistant needs"):
        DashboardSettings(data_dir=tmp_path / "d",
                          home_assistant=HomeAssistantSettings(enabled=True))
