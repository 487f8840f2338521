"""A running gateway refuses a replayed (older) policy, a policy signed by an untrusted key, a
genuine policy edited after signing, and a genuine policy of another site, all arriving as the
retained policy on a real broker; it keeps enforcing the last good version (across a restart)
and says why in a signed policy.rejected event. The unit cases are in
tests/controller/test_policy.py; this is the same protection through the real node runtime."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from controller.envelope import canonical_json, policy_topic
from controller.gateway import Gateway
from controller.keys import generate
from controller.mqtt import MqttLink, MqttSettings
from controller.policy import DoorRule, Group, Person, Policy, sign_policy
from readers.fake import FakeReader
from tests.controller.gateway_kit import DOOR, SITE, EventCollector, make_kit
from tests.support.mosquitto import Broker

pytestmark = pytest.mark.integration

READER = "Fake Reader 00 00"
ALICE, MALLORY = "04A1B2C3D4E5F6", "0DEADBEEF0"  # Mallory left the company in version 1


def policy(version: int, *, mallory: bool, site: str = SITE) -> Policy:
    people = [Person(id="alice", name="Alice", cards=[ALICE], groups=["staff"])]
    if mallory:
        people.append(Person(id="mallory", name="Mallory", cards=[MALLORY], groups=["staff"]))
    return Policy(
        version=version,
        issued_at=datetime(2026, 11, version, tzinfo=UTC),
        site=site,
        people=people,
        groups=[Group(id="staff", name="Staff", doors=[DOOR])],
        doors=[DoorRule(id=DOOR, name="Server room")],
    )


def tampered(blob: bytes) -> bytes:
    """A genuine signed policy with Mallory added and the version bumped, signature kept."""
    doc = json.loads(blob)
    doc["policy"]["version"] += 10
    doc["policy"]["people"].append(
        {**doc["policy"]["people"][0], "id": "mallory", "name": "Mallory", "cards": [MALLORY]}
    )
    return canonical_json(doc)


def test_gateway_refuses_replayed_forged_and_edited_policies(
    tmp_path: Path, broker: Broker
) -> None:
    bindings = [{"name": READER, "role": "door_in", "door": DOOR}]
    kit = make_kit(
        tmp_path / "gw",
        mqtt_port=broker.port,
        backend="fake",
        bindings=bindings,
        policy=policy(2, mallory=False),
    )
    admin = kit.admin_key  # the dashboard's policy key, which the gateway trusts
    old = sign_policy(policy(1, mallory=True), admin)  # genuine, but older
    current = policy(2, mallory=False)
    thief = generate(tmp_path / "thief.key")
    attacks = {
        "older_version": old,
        "unknown_key": sign_policy(policy(3, mallory=True), thief),
        "bad_signature": tampered(sign_policy(current, admin)),
        "wrong_site": sign_policy(policy(4, mallory=True, site="elsewhere"), admin),
    }
    collector = EventCollector(broker.port).start()
    publisher = MqttLink(MqttSettings(port=broker.port), client_id="attacker")
    publisher.start()
    assert publisher.connected.wait(10)
    try:
        for restart in (False, True):
            reader = FakeReader(readers=(READER,))
            pins = MockFactory()
            gateway = Gateway(kit.config, reader=reader, pin_factory=pins)
            gateway.start()
            try:
                boot = gateway.runtime.boot
                todo, expected = dict(attacks), list(attacks)
                if restart:  # the retained (last) attack meets the restarted gateway first
                    last = list(attacks)[-1]
                    collector.wait_for(
                        lambda e, r=last, b=boot: (
                            e.boot == b and e.kind == "policy.rejected" and e.data["reason"] == r
                        )
                    )
                    del todo[last]
                    expected = [last, *todo]
                for reason, blob in todo.items():
                    publisher.publish(policy_topic(SITE, "gw1"), blob, retain=True)
                    ev = collector.wait_for(
                        lambda e, r=reason, b=boot: (
                            e.boot == b and e.kind == "policy.rejected" and e.data["reason"] == r
                        ),
                        timeout=15,
                    )
                    assert ev.node == "gw1" and ev.sig
                mine = [e for e in collector.after(0) if e.boot == boot]
                assert [
                    (e.kind, e.data["reason"])
                    for e in mine
                    if e.kind.startswith("policy.") and e.data["source"] == "mqtt"
                ] == [("policy.rejected", r) for r in expected]
                assert gateway.health()["policy_version"] == 2
                for uid, granted in ((MALLORY, False), (ALICE, True)):
                    reader.present(uid)
                    reader.remove()
                    ev = collector.wait_for(
                        lambda e, u=uid, b=boot: (
                            e.boot == b and e.kind == "door.access" and e.data["card"] == u
                        ),
                        timeout=15,
                    )
                    assert ev.data["granted"] is granted, ev.data
                    if not granted:
                        assert ev.data["reason"] == "unknown_card"
                        assert not any(s.state for s in pins.pin(17).states)
            finally:
                gateway.stop()
        # a genuine newer version still applies: the gateway was listening all along
        gateway = Gateway(
            kit.config, reader=FakeReader(readers=(READER,)), pin_factory=MockFactory()
        )
        gateway.start()
        try:
            publisher.publish(
                policy_topic(SITE, "gw1"), sign_policy(policy(5, mallory=False), admin), retain=True
            )
            collector.wait_for(lambda e: e.kind == "policy.applied" and e.data["version"] == 5)
        finally:
            gateway.stop()
    finally:
        publisher.stop()
        collector.stop()
