"""The gateway end to end: virtual card -> real pcscd -> gateway -> relay + signed event on MQTT."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from controller.envelope import policy_topic, verify_signature
from controller.gateway import Gateway
from controller.keys import load_private
from controller.mqtt import MqttLink, MqttSettings
from readers.pcsc import PcscReaders
from readers.pcscd_host import PcscdHost
from readers.virtual import Misbehaviour, VirtualCard
from tests.controller.gateway_kit import (
    ALICE_UID,
    BOB_UID,
    DOOR,
    MALLORY_UID,
    EventCollector,
    GatewayKit,
    make_kit,
    make_policy,
)
from tests.support.mosquitto import Broker
from tests.support.pcscd import start_pcscd

pytestmark = pytest.mark.integration

RELAY_PIN = 17


@dataclass
class Room:
    kit: GatewayKit
    broker: Broker
    pcscd: PcscdHost
    gateway: Gateway
    pins: MockFactory
    collector: EventCollector

    def card(self, uid: str, slot: int = 0, **kw: object) -> VirtualCard:
        return VirtualCard(port=self.pcscd.port + slot, uid=bytes.fromhex(uid), **kw)  # type: ignore[arg-type]

    @property
    def relay_energised(self) -> bool:
        """The relay now, once the tap being decided is done: the event is journaled (and may
        reach the broker) before the relay moves, and the gateway holds its lock from the
        decision to the relay."""
        with self.gateway._lock:
            return bool(self.pins.pin(RELAY_PIN).state)

    def relay_ever_energised(self) -> bool:
        return any(s.state for s in self.pins.pin(RELAY_PIN).states)


@pytest.fixture
def room(tmp_path: Path, broker: Broker) -> Iterator[Room]:
    host = start_pcscd(tmp_path)
    host.use_in_this_process()
    kit = make_kit(tmp_path / "gw", mqtt_port=broker.port)
    pins = MockFactory()
    collector = EventCollector(broker.port).start()
    gateway = Gateway(kit.config, reader=PcscReaders(), pin_factory=pins)
    gateway.start()
    try:
        collector.wait_for(lambda e: e.kind == "reader.connected", timeout=15)
        yield Room(kit, broker, host, gateway, pins, collector)
    finally:
        gateway.stop()
        collector.stop()
        host.stop()


def test_tap_opens_door_and_signed_event_reaches_broker(room: Room) -> None:
    assert not room.relay_ever_energised(), "relay must never energise during start-up"
    room.card(ALICE_UID).tap()
    event = room.collector.wait_for(lambda e: e.kind == "door.access")
    assert event.data["granted"] is True
    assert event.data["person_id"] == "alice"
    assert event.data["direction"] == "in"
    assert room.relay_energised
    public = load_private(room.kit.config.key_file).public_key()
    verify_signature(event, public)  # raises if the signature is not the node's


def test_unknown_card_is_denied_and_relay_stays_off(room: Room) -> None:
    room.card(MALLORY_UID).tap()
    event = room.collector.wait_for(lambda e: e.kind == "door.access")
    assert event.data == {**event.data, "granted": False, "reason": "unknown_card"}
    assert not room.relay_ever_energised()


def test_exit_reader_records_direction_out(room: Room) -> None:
    room.card(BOB_UID, slot=1).tap()
    event = room.collector.wait_for(lambda e: e.kind == "door.access")
    assert (event.data["person_id"], event.data["direction"]) == ("bob", "out")


@pytest.mark.parametrize("mode", list(Misbehaviour))
def test_misbehaving_card_never_opens(room: Room, mode: Misbehaviour) -> None:
    room.card(ALICE_UID, misbehave=mode).tap()
    event = room.collector.wait_for(lambda e: e.kind in ("reader.read_failed", "door.access"))
    assert event.kind == "reader.read_failed", f"{mode}: {event.data}"
    assert event.data["reason"]
    assert not room.relay_ever_energised()
    # and the reader still works for the next, well-behaved card
    room.card(ALICE_UID).tap()
    ok = room.collector.wait_for(lambda e: e.kind == "door.access")
    assert ok.data["granted"] is True


def test_taps_work_again_after_pcscd_restart_and_reader_replug(room: Room) -> None:
    mark = room.collector.mark()
    room.pcscd.kill()
    room.collector.wait_for(lambda e: e.kind == "reader.disconnected", timeout=15)
    room.pcscd.start()
    room.collector.wait_for(
        lambda e: e.kind == "reader.connected" and room.collector.arrivals.index(e) >= mark,
        timeout=20,
    )
    room.card(ALICE_UID).tap(timeout=15)
    assert room.collector.wait_for(lambda e: e.kind == "door.access").data["granted"] is True

    mark = room.collector.mark()
    room.pcscd.remove_reader()
    room.collector.wait_for(lambda e: e.kind == "reader.disconnected", timeout=15)
    room.pcscd.return_reader()
    room.collector.wait_for(
        lambda e: e.kind == "reader.connected" and room.collector.arrivals.index(e) >= mark,
        timeout=20,
    )
    mark = room.collector.mark()
    room.card(BOB_UID).tap(timeout=15)
    event = room.collector.wait_for(
        lambda e: e.kind == "door.access" and room.collector.arrivals.index(e) >= mark
    )
    assert event.data["person_id"] == "bob"


def test_policy_over_mqtt_revokes_a_right(room: Room) -> None:
    """The dashboard publishes a newer signed policy retained; the next tap obeys it."""
    revoked = make_policy(version=2, alice_groups=())
    link = MqttLink(MqttSettings(port=room.broker.port), client_id="policy-admin")
    link.start()
    assert link.connected.wait(10)
    link.publish(policy_topic("hq", "gw1"), room.kit.signed(revoked), retain=True)
    room.collector.wait_for(lambda e: e.kind == "policy.applied" and e.data["version"] == 2)
    link.stop()
    room.card(ALICE_UID).tap()
    event = room.collector.wait_for(lambda e: e.kind == "door.access")
    assert (event.data["granted"], event.data["reason"]) == (False, "not_permitted")
    assert not room.relay_ever_energised()
    assert room.gateway.health()["policy_version"] == 2


@pytest.mark.parametrize("setting", ["deny", "open"])
def test_granted_tap_that_cannot_be_journaled(
    room: Room, setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Journal full: by default the door stays shut (no unrecorded entry); "open" lets the
    right holder in. Either way the failure is counted for the node's health."""
    from controller.journal import JournalFull

    room.gateway.doors[DOOR].config.unrecorded_access = setting  # type: ignore[assignment]
    real_emit = room.gateway.runtime.emit
    refused = threading.Event()

    def full(kind: str, data: object) -> object:
        if kind == "door.access":
            refused.set()
            raise JournalFull("journal full (test)")
        return real_emit(kind, data)

    monkeypatch.setattr(room.gateway.runtime, "emit", full)
    room.card(ALICE_UID).tap()
    assert refused.wait(15), "the tap never reached the journal"
    monkeypatch.setattr(room.gateway.runtime, "emit", real_emit)
    mark = room.collector.mark()
    room.card(MALLORY_UID).tap()  # taps are handled in order: this one's event follows Alice's
    room.collector.wait_for(
        lambda e: e.kind == "door.access" and room.collector.arrivals.index(e) >= mark
    )
    counters = room.gateway.counters
    assert counters["journal_failures"] >= 1
    if setting == "deny":
        assert not room.relay_ever_energised()
        assert counters["denied_unrecorded"] == 1 and counters["granted"] == 0
    else:
        assert room.relay_ever_energised()
        assert counters["denied_unrecorded"] == 0 and counters["granted"] == 1
