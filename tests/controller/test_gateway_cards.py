"""Cards that prove themselves, end to end: the dashboard's slice (site card keys sealed to the
node) arrives over a real Mosquitto, virtual DESFire EV2 and FeliCa Lite-S cards are tapped
through a real pcscd + vpcd, and the gateway's PC/SC reader runs the challenge before the door
decides. Clones (same UID, a wrong key or no key) are refused ``credential_failed``; a UID-only
card is refused at the verified-only server room and let in, marked weak, at the office."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from controller.envelope import Event, policy_topic
from controller.gateway import Gateway
from controller.mqtt import MqttLink, MqttSettings
from controller.policy import DoorRule, Group, Person, Policy, sign_policy
from controller.policy_slice import NodeScope, card_key_for, slice_policy
from readers.pcsc import PcscReaders
from readers.verify.base import SiteKey
from readers.verify.select import CardVerifier
from readers.virtual import VirtualCard
from readers.virtual_cards import DesfireCard, FelicaLiteSCard
from tests.controller.gateway_kit import DOOR, SITE, EventCollector, GatewayKit, make_kit
from tests.support.mosquitto import Broker
from tests.support.pcscd import start_pcscd

pytestmark = pytest.mark.integration

OFFICE = "office"
DESFIRE_UID = bytes.fromhex("04A1B2C3D4E5F6")
FELICA_IDM = bytes.fromhex("012E4CD0A1B2C3D4")
WEAK_UID = bytes.fromhex("0102030405060708")
K1 = SiteKey("k1", bytes(range(32)))
K2 = SiteKey("k2", bytes(range(100, 132)))


def site_policy(version: int, *, lost: Sequence[bytes] = ()) -> Policy:
    now = datetime.now(UTC)
    verified = [u.hex().upper() for u in (DESFIRE_UID, FELICA_IDM) if u not in lost]
    return Policy(
        version=version, issued_at=now, expires_at=now + timedelta(days=7), site=SITE,
        people=[
            Person(id="alice", name="Alice", cards=verified, verified_cards=verified,
                   groups=["staff"]),
            Person(id="bob", name="Bob", cards=[WEAK_UID.hex()], groups=["staff"]),
        ],
        groups=[Group(id="staff", name="Staff", doors=[DOOR, OFFICE])],
        doors=[DoorRule(id=DOOR, name="Server room", require_verified=True),
               DoorRule(id=OFFICE, name="Office")],
    )


def signed_slice(kit: GatewayKit, node: str, policy: Policy, keys: Sequence[SiteKey]) -> bytes:
    part = slice_policy(policy, node, NodeScope(doors=frozenset({DOOR, OFFICE})),
                        card_key_for(kit.admin_key, SITE, node), site_keys=keys)
    return sign_policy(part, kit.admin_key)


class Room:
    def __init__(self, kit: GatewayKit, gateway: Gateway, collector: EventCollector,
                 port: int, broker: Broker) -> None:
        self.kit, self.gateway, self.collector, self.port = kit, gateway, collector, port
        self.link = MqttLink(MqttSettings(port=broker.port), client_id="dashboard")

    def push(self, version: int, keys: Sequence[SiteKey], *, node: str = "gw1",
             lost: Sequence[bytes] = (), kit: GatewayKit | None = None) -> None:
        blob = signed_slice(kit or self.kit, node, site_policy(version, lost=lost), keys)
        mark = self.collector.mark()
        self.link.publish(policy_topic(SITE, node), blob, retain=True)
        self.collector.wait_for(
            lambda e: e.node == node and e.kind == "policy.applied"
            and e.data["version"] == version
            and self.collector.arrivals.index(e) >= mark, timeout=20)

    def present(self, uid: bytes, *, applet: object = None, slot: int = 0,
                node: str = "gw1") -> Event:
        """Hold a card on the slot's reader until its door.access is out, then take it away."""
        mark = self.collector.mark()
        atr = getattr(applet, "atr", None)
        kwargs = {"atr": atr} if atr else {}
        card = VirtualCard(port=self.port + slot, uid=uid, applet=applet, **kwargs)  # type: ignore[arg-type]
        card.insert()
        try:
            return self.collector.wait_for(
                lambda e: e.kind == "door.access" and e.node == node
                and e.data["card"] == uid.hex().upper()
                and self.collector.arrivals.index(e) >= mark, timeout=20)
        finally:
            card.remove()


@pytest.fixture
def room(tmp_path: Path, broker: Broker) -> Iterator[Room]:
    host = start_pcscd(tmp_path)
    host.use_in_this_process()
    kit = make_kit(tmp_path / "gw", mqtt_port=broker.port, extra_doors=(OFFICE,), bindings=[
        {"name": "Virtual PCD 00 00", "role": "door_in", "door": DOOR},
        {"name": "Virtual PCD 00 01", "role": "door_in", "door": OFFICE}])
    (kit.root / "card.key").write_text(card_key_for(kit.admin_key, SITE, "gw1").hex() + "\n")
    collector = EventCollector(broker.port).start()
    gateway = Gateway(kit.config, reader=PcscReaders(verifier=CardVerifier()),
                      pin_factory=MockFactory())
    gateway.start()
    r = Room(kit, gateway, collector, host.port, broker)
    r.link.start()
    try:
        assert r.link.connected.wait(10)
        collector.wait_for(lambda e: e.kind == "reader.connected", timeout=15)
        yield r
    finally:
        r.link.stop()
        gateway.stop()
        collector.stop()
        host.stop()


def relay_unlocks(gateway: Gateway, door: str, timeout: float = 10.0) -> bool:
    """The door's relay energises just after its door.access is journaled (and may be seen on
    the broker first): wait for it, polling the mock pins' door state."""
    deadline = time.monotonic() + timeout
    while gateway.doors[door].state != "unlocked":
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def outcome(event: Event) -> tuple[bool, str | None, str | None]:
    return event.data["granted"], event.data["reason"], event.data["credential"]


def test_verified_cards_open_and_their_clones_are_refused(
    room: Room, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    room.push(10, [K1])
    stored = room.kit.config.policy_store.read_bytes()
    assert K1.secret.hex().encode() not in stored and b'"card_keys"' in stored

    ok = room.present(DESFIRE_UID, applet=DesfireCard.enrolled(DESFIRE_UID, K1))
    assert outcome(ok) == (True, None, "verified")
    assert (ok.data["card_type"], ok.data["credential_key"]) == ("desfire", "k1")
    assert ok.data["credential_detail"] is None
    assert relay_unlocks(room.gateway, DOOR)
    felica = room.present(FELICA_IDM, applet=FelicaLiteSCard.enrolled(FELICA_IDM, K1))
    assert outcome(felica) == (True, None, "verified")
    assert felica.data["card_type"] == "felica_lite_s"

    clones = {
        "DESFire, same UID, wrong key": (DESFIRE_UID, DesfireCard(DESFIRE_UID, bytes(16))),
        "DESFire, same UID, no application": (DESFIRE_UID, DesfireCard(DESFIRE_UID)),
        "FeliCa, same IDm, factory key": (FELICA_IDM, FelicaLiteSCard(FELICA_IDM)),
        "UID-only emulator": (DESFIRE_UID, None),
    }
    for what, (uid, applet) in clones.items():
        event = room.present(uid, applet=applet)
        assert outcome(event)[:2] == (False, "credential_failed"), what
        assert event.data["person_id"] == "alice", what  # the review item names whose card
        assert event.data["credential_detail"], what  # why, for the reviewer
    assert room.gateway.decisions[(DOOR, "denied", "credential_failed")] == len(clones)
    path = room.kit.config.journal_path
    journal = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal"))
                       if p.exists())
    for text in (caplog.text.encode(), journal, room.kit.config.policy_store.read_bytes()):
        assert K1.secret not in text and K1.secret.hex().encode() not in text.lower()
    counted = room.gateway.reader.counters  # type: ignore[attr-defined]
    assert counted["credential.verified"] == 2 and counted["credential.failed"] == 2
    assert counted["credential.weak"] == 2  # no application; a UID-only emulator (no answer)


def test_a_uid_only_card_is_weak_refused_at_the_server_room_let_in_at_the_office(
    room: Room,
) -> None:
    room.push(10, [K1])
    refused = room.present(WEAK_UID, slot=0)
    assert outcome(refused) == (False, "credential_weak", "weak")
    assert room.gateway.doors[DOOR].state == "locked"
    allowed = room.present(WEAK_UID, slot=1)
    assert outcome(allowed) == (True, None, "weak")
    assert relay_unlocks(room.gateway, OFFICE)


def test_master_key_rotation_refuses_no_legitimate_tap(room: Room) -> None:
    desfire = DesfireCard.enrolled(DESFIRE_UID, K1)
    felica = FelicaLiteSCard.enrolled(FELICA_IDM, K1)
    room.push(10, [K1])
    room.push(11, [K2, K1])  # changeover: the new key first, the old one still accepted
    # each card is re-keyed at its first tap of the changeover (test_gateway_enrol), and is
    # let in on that tap
    for uid, card in ((DESFIRE_UID, desfire), (FELICA_IDM, felica)):
        event = room.present(uid, applet=card)
        assert outcome(event) == (True, None, "verified")
        assert event.data["credential_key"] == "k2"
        event = room.present(uid, applet=card)
        assert outcome(event) == (True, None, "verified")
        assert event.data["credential_key"] == "k2"
    room.push(12, [K2])  # the old key retired: a card still on it no longer proves itself
    stale = room.present(DESFIRE_UID, applet=DesfireCard.enrolled(DESFIRE_UID, K1))
    assert outcome(stale)[:2] == (False, "credential_failed")
    assert outcome(room.present(FELICA_IDM, applet=felica)) == (True, None, "verified")


def test_a_lost_card_stops_on_every_node_with_one_policy_push(
    tmp_path: Path, broker: Broker
) -> None:
    """Two gateways (gw1 on the first reader slot, gw2 on the second) on one broker: the card
    opens at both; one push of the next policy, without the card, and both refuse it."""
    host = start_pcscd(tmp_path)
    host.use_in_this_process()
    collector = EventCollector(broker.port).start()
    gateways: list[Gateway] = []
    kits: dict[str, GatewayKit] = {}
    admin = None
    try:
        for slot, node in enumerate(("gw1", "gw2")):
            kit = make_kit(tmp_path / node, mqtt_port=broker.port, node=node,
                           extra_doors=(OFFICE,),
                           bindings=[{"name": f"Virtual PCD 00 0{slot}", "role": "door_in",
                                      "door": DOOR}])
            if admin is None:
                admin = kit.admin_key
            else:  # one dashboard signs for both: gw2 trusts gw1's admin key
                (kit.root / "admin.key.pub").write_bytes((tmp_path / "gw1" /
                                                          "admin.key.pub").read_bytes())
                kit = GatewayKit(kit.root, kit.config, admin, kit.config_path)
            (kit.root / "card.key").write_text(card_key_for(admin, SITE, node).hex() + "\n")
            kits[node] = kit
            name = f"Virtual PCD 00 0{slot}"
            gateway = Gateway(kit.config, reader=PcscReaders(
                reader_filter=lambda n, want=name: n == want, verifier=CardVerifier()),
                pin_factory=MockFactory())
            gateway.start()
            gateways.append(gateway)
        room = Room(kits["gw1"], gateways[0], collector, host.port, broker)
        room.link.start()
        assert room.link.connected.wait(10)
        for node in kits:
            room.push(10, [K1], node=node, kit=kits[node])
        card = DesfireCard.enrolled(DESFIRE_UID, K1)
        for slot, node in enumerate(kits):
            assert outcome(room.present(DESFIRE_UID, applet=card, slot=slot, node=node)) == (
                True, None, "verified")
        # the admin marks the card lost: the next policy leaves it out, pushed once to each
        for node in kits:
            room.push(11, [K1], node=node, kit=kits[node], lost=[DESFIRE_UID])
        for slot, node in enumerate(kits):
            event = room.present(DESFIRE_UID, applet=card, slot=slot, node=node)
            assert outcome(event)[:2] == (False, "unknown_card"), node
        room.link.stop()
    finally:
        for gateway in gateways:
            gateway.stop()
        collector.stop()
        host.stop()
