"""The gateway decides on its own hashed slice: the dashboard's slice for gw1 (cards only as
HMACs under gw1's card key) arrives on gw1's policy topic over a real Mosquitto, a virtual card
tapped through pcscd is hashed the same way and granted or denied, the slice on the node's disk
names no card, and a slice for another node is refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from controller.envelope import policy_topic
from controller.gateway import Gateway
from controller.mqtt import MqttLink, MqttSettings
from controller.policy import DoorRule, Group, Person, Policy, sign_policy
from controller.policy_slice import NodeScope, card_key_for, slice_policy
from readers.pcsc import PcscReaders
from readers.virtual import VirtualCard
from tests.controller.gateway_kit import (
    ALICE_UID,
    BOB_UID,
    DOOR,
    MALLORY_UID,
    SITE,
    EventCollector,
    GatewayKit,
    make_kit,
)
from tests.support.mosquitto import Broker
from tests.support.pcscd import start_pcscd

pytestmark = pytest.mark.integration
CAROL_UID = "0A0B0C0D"  # may use the lab door only: not in gw1's slice


def site_policy(version: int) -> Policy:
    now = datetime.now(UTC)
    return Policy(
        version=version, issued_at=now, expires_at=now + timedelta(days=7), site=SITE,
        people=[
            Person(id="alice", name="Alice", cards=[ALICE_UID], groups=["staff"]),
            Person(id="bob", name="Bob", cards=[BOB_UID], groups=["staff"], active=False),
            Person(id="carol", name="Carol", cards=[CAROL_UID], groups=["lab"]),
        ],
        groups=[Group(id="staff", name="Staff", doors=[DOOR]),
                Group(id="lab", name="Lab", doors=["lab"])],
        doors=[DoorRule(id=DOOR, name="Server room"), DoorRule(id="lab", name="Lab")],
    )


def slice_for(kit: GatewayKit, node: str, version: int) -> bytes:
    key = card_key_for(kit.admin_key, SITE, node)
    part = slice_policy(site_policy(version), node, NodeScope(doors=frozenset({DOOR})), key)
    return sign_policy(part, kit.admin_key)


@pytest.fixture
def room(tmp_path: Path, broker: Broker) -> Iterator[tuple[GatewayKit, Gateway, EventCollector,
                                                          int]]:
    host = start_pcscd(tmp_path)
    host.use_in_this_process()
    kit = make_kit(tmp_path / "gw", mqtt_port=broker.port)
    # what `secroom policy card-key` hands the installer, in the default place
    (kit.root / "card.key").write_text(card_key_for(kit.admin_key, SITE, "gw1").hex() + "\n")
    collector = EventCollector(broker.port).start()
    gateway = Gateway(kit.config, reader=PcscReaders(), pin_factory=MockFactory())
    gateway.start()
    try:
        collector.wait_for(lambda e: e.kind == "reader.connected", timeout=15)
        yield kit, gateway, collector, host.port
    finally:
        gateway.stop()
        collector.stop()
        host.stop()


def test_the_gateway_grants_and_denies_on_its_hashed_slice(room, broker: Broker) -> None:
    kit, gateway, collector, pcscd_port = room
    link = MqttLink(MqttSettings(port=broker.port), client_id="dashboard")
    link.start()
    try:
        assert link.connected.wait(10)
        link.publish(policy_topic(SITE, "gw1"), slice_for(kit, "gw2", 2), retain=True)
        refused = collector.wait_for(lambda e: e.kind == "policy.rejected", timeout=15)
        assert refused.data["reason"] == "wrong_node"
        link.publish(policy_topic(SITE, "gw1"), slice_for(kit, "gw1", 3), retain=True)
        collector.wait_for(lambda e: e.kind == "policy.applied" and e.data["version"] == 3,
                           timeout=15)
    finally:
        link.stop()
    stored = kit.config.policy_store.read_bytes()
    assert b'"card_hash":"hmac-sha256"' in stored
    for uid in (ALICE_UID, BOB_UID, CAROL_UID):
        assert uid.encode() not in stored.upper()

    expected = {ALICE_UID: (True, None), BOB_UID: (False, "inactive"),
                CAROL_UID: (False, "unknown_card"), MALLORY_UID: (False, "unknown_card")}
    for uid, (granted, reason) in expected.items():
        mark = len(collector.arrivals)
        VirtualCard(port=pcscd_port, uid=bytes.fromhex(uid)).tap()
        event = collector.wait_for(
            lambda e, m=mark: e.kind == "door.access" and collector.arrivals.index(e) >= m,
            timeout=15)
        assert (event.data["granted"], event.data["reason"]) == (granted, reason), uid
    assert gateway.health()["policy_version"] == 3
