"""A node cannot speak for another node: the deployment's broker ACL drops what it publishes
under another node's topic, and the dashboard's signature and topic checks refuse whatever
gets through (replayed, re-addressed or forged events), so that a broker without the ACL is
still safe. The attacker holds gw1's broker password and gw1's node key (a stolen gateway).

Real Mosquitto with hardware/mosquitto/secroom.acl, the dashboard's IngestConsumer, SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controller.envelope import canonical_json, topic_for
from dashboard.bus import Bus
from dashboard.ingest.consumer import IngestConsumer
from dashboard.models import Anomaly, Node, StoredEvent
from tests.dashboard.conftest import FakeNode
from tests.security.acl_broker import SITE, Acks, AclBroker

pytestmark = pytest.mark.integration

USERS = {"gw1": "pw-gw1-Secret", "gw2": "pw-gw2-Secret", "dashboard": "pw-dash-Secret"}


@pytest.fixture(params=["deployment_acl", "no_acl"])
def broker(request: pytest.FixtureRequest) -> Iterator[AclBroker]:
    b = AclBroker(USERS, acl=request.param == "deployment_acl")
    b.start()
    try:
        yield b
    finally:
        b.stop()


def _stored(sm: sessionmaker[Session], node: str) -> list[tuple[int, str]]:
    with sm() as s:
        rows = s.execute(
            select(StoredEvent.seq, StoredEvent.hash)
            .where(StoredEvent.node == node)
            .order_by(StoredEvent.seq)
        )
        return [(seq, h) for seq, h in rows]


def test_a_node_cannot_publish_or_replay_as_another_node(
    broker: AclBroker, sm: sessionmaker[Session]
) -> None:
    acl = broker.acl
    gw1, gw2 = FakeNode("gw1", SITE), FakeNode("gw2", SITE)
    with sm() as s:
        gw1.enrol(s)
        gw2.enrol(s)
    dash = broker.link("dashboard")
    consumer = IngestConsumer(sm, dash, site=SITE, bus=Bus(), tick_s=0.05)
    consumer.start()
    assert dash.wait_subscribed(30), dash.last_error  # events sent before would reach no one
    l1, l2 = broker.link("gw1"), broker.link("gw2")
    acks1, acks2 = Acks(l1, "gw1"), Acks(l2, "gw2")
    try:
        real2 = [gw2.access("p1"), gw2.access("p1", "out"), gw2.access("p2")]
        real1 = [gw1.access("p3"), gw1.access("p3", "out"), gw1.access("p4")]
        for e in real2:
            l2.publish(e.topic(), e.to_bytes())
        for e in real1:
            l1.publish(e.topic(), e.to_bytes())
        assert acks2.reaching(3) == 3 and acks1.reaching(3) == 3

        # what the thief does with gw1's password and key
        captured = real2[1]  # a genuine gw2 event seen on the wire
        gw2_as_thief = FakeNode("gw2", SITE, key=gw1.key)  # gw1's key, gw2's name
        gw2_as_thief.seq, gw2_as_thief.prev = gw2.seq, gw2.prev
        forged_next = gw2_as_thief.access("p9")  # seq 4 "from gw2", signed by gw1's key
        gw1_again = FakeNode("gw1", SITE, key=gw1.key)
        fork = gw1_again.access("p9")  # a rewritten seq 1 of its own history
        hostile = [
            # under gw2's topics: the ACL drops these
            (captured.topic(), captured.to_bytes(), "acl"),
            (forged_next.topic(), forged_next.to_bytes(), "acl"),
            (
                topic_for(SITE, "gw2", "state"),
                canonical_json({"state": "online", "public_key": gw1.public}),
                "acl",
            ),
            # under gw1's own topics: the ACL lets them through, the dashboard refuses them
            (topic_for(SITE, "gw1", "events/door.access"), captured.to_bytes(), "dash"),
            (topic_for(SITE, "gw1", "events/door.access"), forged_next.to_bytes(), "dash"),
            (real1[0].topic(), real1[0].to_bytes(), "dash"),  # replay of its own: duplicate
            (fork.topic(), fork.to_bytes(), "dash"),
        ]
        for topic, payload, _ in hostile:
            l1.publish(topic, payload)
        # then both nodes carry on; their next events are stored and acked
        last1, last2 = gw1.access("p3"), gw2.access("p2", "out")
        l1.publish(last1.topic(), last1.to_bytes())
        l2.publish(last2.topic(), last2.to_bytes())
        assert acks1.reaching(4) == 4 and acks2.reaching(4) == 4
        reached = 8 + sum(1 for *_, who in hostile if who == "dash" or not acl)
        assert consumer.wait_processed(reached, 30), consumer.counters
        assert consumer.wait_idle(30)
        c = consumer.counters
        assert c["received"] == reached, c  # with the ACL, nothing under gw2 came from gw1
        assert c["stored"] == 8, c
        assert c["topic_mismatch"] == 2, c
        assert c["fork"] == 1, c
        if acl:
            assert c.get("bad_signature", 0) == 0 and c["duplicate"] == 1, c
        else:  # the forged gw2 event fails its signature; the replayed one is a duplicate
            assert c["bad_signature"] == 1 and c["duplicate"] == 2, c
    finally:
        l1.stop()
        l2.stop()
        consumer.stop()
        dash.stop()
    assert _stored(sm, "gw2") == [(e.seq, e.hash) for e in [*real2, last2]]
    assert _stored(sm, "gw1") == [(e.seq, e.hash) for e in [*real1, last1]]
    with sm() as s:
        assert s.get(Node, "gw2").public_key == gw2.public  # the state message changed nothing
        kinds = set(s.scalars(select(Anomaly.kind)))
    assert "fork" in kinds, kinds
    if not acl:
        assert {"bad_signature", "node_key_mismatch"} <= kinds, kinds
