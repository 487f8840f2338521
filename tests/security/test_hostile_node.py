"""A hostile node and an anonymous client against the room's broker (TLS, per-node users, the
ACL `secroom broker config` writes) and behind it the dashboard and a real gateway runtime.

The attacker holds a host agent's broker password and its node key (a stolen room PC), and
tries to forge, in turn: a door.access (on its own topic, and on the gateway's), an ack and a
resend request to the gateway, a policy for the gateway, and a tap into an enrolment window an
admin opened at the gateway's reader. An anonymous client tries the same without a password.

Whatever the ACL lets through must be refused by the parts behind it, so every attempt is also
made with the ACL off (``no_acl``: a misconfigured broker). In both: nothing forged is stored,
the gateway prunes nothing it was not genuinely acked for and applies no forged policy, no card
is enrolled from the forgery, and each attempt that reaches a part is counted there and raised
as a review item; then the gateway's genuine events, held back during the attack, all arrive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controller.envelope import canonical_json, policy_topic, topic_for
from controller.events import DoorAccess, NodeStarted
from controller.keys import generate, public_b64
from controller.mqtt import MqttError
from controller.policy import Policy, sign_policy
from controller.policy_store import PolicyStore
from controller.receipts import Ack, sign_ack
from controller.runtime import NodeRuntime, RuntimeSettings
from dashboard import services
from dashboard.bus import Bus
from dashboard.enrolment import EnrolDesk, ReaderRef
from dashboard.ingest.consumer import IngestConsumer
from dashboard.models import Anomaly, Card, Node, StoredEvent
from tests.dashboard.conftest import FakeNode
from tests.security.acl_broker import SITE, AclBroker
from tests.support import wait_until
from tests.support.receipts import DashboardSigner

pytestmark = pytest.mark.integration

USERS = {"gw1": "pw-gw1-Secret", "pc-01": "pw-pc01-Secret", "dashboard": "pw-dash-Secret"}


@pytest.fixture(params=["deployment_acl", "no_acl"])
def broker(request: pytest.FixtureRequest) -> Iterator[AclBroker]:
    b = AclBroker(USERS, acl=request.param == "deployment_acl")
    b.start()
    try:
        yield b
    finally:
        b.stop()


def _kinds(sm: sessionmaker[Session]) -> list[str]:
    with sm() as s:
        return list(s.scalars(select(Anomaly.kind)))


def _stored(sm: sessionmaker[Session], node: str) -> list[str]:
    with sm() as s:
        return list(s.scalars(select(StoredEvent.hash).where(StoredEvent.node == node)
                              .order_by(StoredEvent.seq)))


def test_a_stolen_host_agent_and_an_anonymous_client_bend_nothing(
    tmp_path: Path, broker: AclBroker, sm: sessionmaker[Session]
) -> None:
    acl = broker.acl
    dash_key = Ed25519PrivateKey.generate()
    trusted = tmp_path / "dashboard.pub"
    trusted.write_text(public_b64(dash_key.public_key()) + "\n")
    bus = Bus()
    desk = EnrolDesk(clock=lambda: datetime.now(UTC))
    desk.attach(bus)
    dash_link = broker.link("dashboard")
    consumer = IngestConsumer(sm, dash_link, site=SITE, bus=bus, tick_s=0.05, gap_timeout_s=2,
                              resend_interval_s=0.2, receipt_key=dash_key)
    consumer.start()
    assert dash_link.wait_subscribed(30), dash_link.last_error
    generate(tmp_path / "gw1.key")
    gw1 = NodeRuntime(RuntimeSettings(
        node="gw1", site=SITE, journal=tmp_path / "gw1.sqlite", key_file=tmp_path / "gw1.key",
        mqtt=broker.settings("gw1"), trusted_keys=[trusted]))
    store = PolicyStore(tmp_path / "policy.json", [dash_key.public_key()], site=SITE,
                        node="gw1", emit=gw1.emit)
    thief = FakeNode("pc-01", site=SITE)  # the stolen PC's node key
    links = [dash_link]
    gw1.start()
    try:
        store.follow(gw1.subscribe)
        wait_until(lambda: _has_node(sm, "gw1"), 30, "gw1 to announce its key")
        with sm.begin() as s:
            services.approve_node(s, "admin", "gw1", roles=["door_gateway"],
                                  public_key=gw1.public_key)
            services.create_person(s, "admin", {"id": "p1", "name": "山田 太郎"})
        with sm() as s:
            thief.enrol(s, roles={"host_agent"})  # (commits)
        assert store.offer(sign_policy(_policy(3), dash_key))
        acked = _emit(gw1, 3)
        assert gw1.wait_acked(acked, 30)
        window, _ = desk.open(user="admin", person_id="p1", reader=ReaderRef("gw1", "door-in"),
                              label="サーバー室（入）", now=datetime.now(UTC))

        # the dashboard stops listening: what gw1 journals now waits for its ack
        consumer.stop()
        dash_link.stop()
        held = _emit(gw1, 4)
        assert gw1.journal.ack == acked

        pc = broker.link("pc-01")
        anonymous = broker.link(None, connect=False)
        links += [pc, anonymous]
        assert not anonymous.connected.wait(2)  # no password: refused at the door
        now = datetime.now(UTC)
        tap = thief.access("p1", door="door", ts=now)  # reader door-in; its own key and topic
        forged_tap = FakeNode("gw1", site=SITE, key=thief.key).access("p1", door="door", ts=now)
        forged = [
            (topic_for(SITE, "pc-01", "events/door.access"), _wire(tap)),
            (topic_for(SITE, "gw1", "events/door.access"), _wire(forged_tap)),
            (topic_for(SITE, "gw1", "ack"), canonical_json({"seq": held})),  # unsigned
            (topic_for(SITE, "gw1", "ack"),
             DashboardSigner(thief.key).ack(SITE, "gw1", held, gw1.journal.hash_at(held) or "")),
            (topic_for(SITE, "gw1", "resend"),
             DashboardSigner(thief.key).resend(SITE, "gw1", 1, held)),
            (policy_topic(SITE, "gw1"), sign_policy(_policy(99), thief.key)),
        ]
        resends = gw1.publisher.stats["resends"]  # the dashboard's own, before the attack
        for topic, payload in forged:
            pc.publish(topic, payload, qos=1)
            with pytest.raises(MqttError):  # a client the broker never let in sends nothing
                anonymous.publish(topic, payload, qos=1)
        refused_receipts = 0 if acl else 3  # the unsigned ack, the thief's ack and resend
        rejected_policies = 0 if acl else 1
        wait_until(lambda: gw1.publisher.stats["acks_refused"]
                   + gw1.publisher.stats["resends_refused"] >= refused_receipts, 30,
                   "the gateway to refuse the forged receipts")
        # the marker: a genuine receipt after the forgeries (the broker keeps a client's order)
        signer = broker.link("dashboard", client_id="dash-signer")
        links.append(signer)
        taken = gw1.publisher.stats["acks"]
        marker = Ack(SITE, "gw1", acked, gw1.journal.hash_at(acked) or "",
                     int(time.time() * 1000))  # the counter the dashboard would use now
        signer.publish(topic_for(SITE, "gw1", "ack"), sign_ack(dash_key, marker), qos=1)
        wait_until(lambda: gw1.publisher.stats["acks"] > taken, 30,
                   "the gateway to take the genuine ack sent after the forgeries")
        stats = gw1.publisher.stats
        assert stats["acks_refused"] + stats["resends_refused"] == refused_receipts, stats
        assert stats["resends"] == resends  # nothing re-sent on a forged request
        assert gw1.journal.ack == acked and gw1.journal.hash_at(held)  # nothing pruned
        assert store.current is not None and store.current.version == 3  # forged one refused
        assert _count_kind(gw1, "policy.rejected") == rejected_policies

        # the dashboard comes back: the forgeries that reached it are refused, counted, raised;
        # the gateway's held events (and its own reports of what it refused) are stored
        dash_link2 = broker.link("dashboard", client_id="dash-2")
        links.append(dash_link2)
        consumer = IngestConsumer(sm, dash_link2, site=SITE, bus=bus, tick_s=0.05,
                                  gap_timeout_s=2, resend_interval_s=0.2, receipt_key=dash_key)
        consumer.start()
        assert dash_link2.wait_subscribed(30)  # (else the republished forgeries find nobody)
        pc.publish(*forged[0], qos=1)  # the host agent's door.access, now that someone hears
        if not acl:
            pc.publish(*forged[1], qos=1)
        # a genuine tap at the reader the admin chose: the window takes it (and would have
        # taken a forged one first, had any been stored)
        last = gw1.emit("door.access", DoorAccess(door="door", reader="door-in", direction="in",
                                                  granted=False, reason="unknown_card",
                                                  card="0A0B0C0D")).seq
        assert gw1.wait_acked(last, 60), gw1.publisher.stats
        wait_until(lambda: consumer.counters.get("kind_not_allowed", 0) >= 1, 30,
                   "the host agent's door.access to be refused")
        if not acl:
            wait_until(lambda: consumer.counters.get("bad_signature", 0) >= 1, 30,
                       "the door.access forged as gw1 to be refused")
        kinds = _kinds(sm)
        assert "kind_not_allowed" in kinds
        if not acl:
            assert {"bad_signature", "receipt_refused", "policy_rejected"} <= set(kinds), kinds
        stored = _stored(sm, "gw1")
        assert len(stored) == last == len(set(stored))  # every genuine event once, in order
        assert tap.hash not in _stored(sm, "pc-01") and forged_tap.hash not in stored
        with sm() as s:
            assert s.get(Card, "01020304") is None  # the forged taps' card
            assert s.get(Node, "gw1").contiguous_seq == last
        wait_until(lambda: window.candidate is not None, 30, "the genuine tap in the window")
        assert window.candidate is not None and window.candidate.uid == "0A0B0C0D"
        assert "other_node" not in window.ignored  # the host agent's tap was never stored
    finally:
        gw1.stop()
        consumer.stop()
        for link in links:
            link.stop()


def _has_node(sm: sessionmaker[Session], name: str) -> bool:
    with sm() as s:
        return s.get(Node, name) is not None


def _emit(runtime: NodeRuntime, n: int) -> int:
    seq = 0
    for _ in range(n):
        seq = runtime.emit("node.started", NodeStarted(boot=runtime.boot, resumed_after=0)).seq
    return seq


def _count_kind(runtime: NodeRuntime, kind: str) -> int:
    return sum(1 for e in runtime.journal.events(1) if e.kind == kind)


def _wire(event: object) -> bytes:
    return event.to_bytes()  # type: ignore[attr-defined]


def _policy(version: int) -> Policy:
    return Policy(version=version, issued_at=datetime.now(UTC), site=SITE, people=[],
                  groups=[], doors=[])

