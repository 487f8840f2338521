"""10,000 random and hostile payloads among real events: every one rejected and counted,
nothing stored from them, and every real event before, among and after them stored."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from sqlalchemy import func, select

from dashboard.bus import Bus
from dashboard.ingest.consumer import IngestConsumer
from dashboard.models import DoorAccess, Node, Presence, StoredEvent
from tests.dashboard.conftest import SITE, T0, msg
from tests.dashboard.hostile import hostile_payloads


def real_events(node, n):
    out = []
    for i in range(n):
        out.append(node.access(f"p{i % 7}", "in" if i % 2 == 0 else "out"))
    return out


def check_store(session, real, node_name="gw1"):
    seqs = session.scalars(select(StoredEvent.seq).order_by(StoredEvent.seq)).all()
    assert seqs == [e.seq for e in real]
    hashes = session.scalars(select(StoredEvent.hash).order_by(StoredEvent.seq)).all()
    assert hashes == [e.hash for e in real]
    assert session.scalar(select(func.count()).select_from(DoorAccess)) == len(real)
    assert set(session.scalars(select(Presence.person_id))) <= {f"p{i}" for i in range(7)}
    assert session.scalars(select(Node.name)).all() == [node_name]
    assert session.get(Node, node_name).contiguous_seq == len(real)


def test_ten_thousand_hostile_payloads_into_the_core(session, core, node):
    node.enrol(session)
    real = real_events(node, 150)
    rng = random.Random(20261122)
    hostile = list(hostile_payloads(rng, real[:50], SITE, 10_000))
    assert len(hostile) == 10_000
    stream: list[tuple[str, bytes, str | None]] = [(*msg(e), None) for e in real[:50]]
    middle = [(t, p, c) for t, p, c in hostile]
    for k, e in enumerate(real[50:100]):  # real events sprinkled among the hostile ones
        middle.insert(rng.randint(0, len(middle)), (*msg(e), None))
        del k
    stream += middle + [(*msg(e), None) for e in real[100:]]
    totals: Counter[str] = Counter()
    for i in range(0, len(stream), 500):
        chunk = stream[i : i + 500]
        result = core.process(session, [(t, p) for t, p, _ in chunk], T0)
        session.commit()
        assert [o.index for o in result.outcomes] == list(range(len(chunk)))
        for outcome, (_, _, cat) in zip(result.outcomes, chunk, strict=True):
            if cat is None:
                assert outcome.status == "stored", outcome
            else:
                assert outcome.status in ("rejected", "duplicate"), (cat, outcome)
        totals.update(result.counts)
    snap = core.counters.snapshot()
    assert snap["stored"] == 150
    assert snap["rejected"] == 10_000
    assert totals["stored"] == 150
    for reason in (
        "oversized",
        "malformed",
        "bad_hash",
        "bad_signature",
        "duplicate",
        "unknown_node",
        "wrong_site",
        "topic_mismatch",
        "bad_topic",
        "bad_state",
        "bad_version",
    ):
        assert snap.get(reason, 0) > 0, reason
    check_store(session, real)


@pytest.mark.integration
def test_hostile_payloads_through_the_broker(broker, sm, node):
    from tests.dashboard.ingest.test_consumer import NodeSide, connect

    with sm() as s:
        node.enrol(s)
    real = real_events(node, 60)
    rng = random.Random(7)
    hostile = list(hostile_payloads(rng, real[:20], SITE, 1_000))
    link = connect(broker, "dashboard")
    consumer = IngestConsumer(sm, link, site=SITE, bus=Bus(), tick_s=0.2)
    consumer.start()
    assert link.wait_subscribed(30), link.last_error  # events sent before would reach no one
    side = NodeSide(broker, node)
    try:
        side.send(*real[:20])
        for i, (topic, payload, _) in enumerate(hostile):
            side.link.publish(topic, payload, qos=1)
            if i % 50 == 0:
                side.send(real[20 + i // 50])
        side.send(*real[40:])
        assert side.ack_reaching(60, timeout=60) == 60
        delivered = [h for h in hostile if _subscribed(h[0])]  # others never reach us
        oversized = [h for h in delivered if h[2] == "huge"]
        assert oversized  # the link drops these before the queue (counted there, not parsed)
        assert consumer.wait_processed(60 + len(delivered) - len(oversized), 60), \
            consumer.counters
        snap = consumer.counters
        assert snap["stored"] == 60, snap
        assert snap["rejected"] + link.stats["oversized"] == len(delivered), snap
        assert link.stats["oversized"] == len(oversized)
        with sm() as s:
            check_store(s, real)
    finally:
        side.link.stop()
        consumer.stop()
        link.stop()


def _subscribed(topic: str) -> bool:
    parts = topic.split("/")
    return parts[:3] == ["secroom", "v1", SITE] and (
        (len(parts) >= 5 and parts[4] == "events") or (len(parts) == 5 and parts[4] == "state")
    )
