"""The consumer against a real Mosquitto: acks, resend requests, gap anomalies, bus, enrolment."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from controller.envelope import canonical_json, topic_for
from controller.mqtt import MqttLink, MqttSettings
from controller.receipts import open_ack
from dashboard import services
from dashboard.bus import Bus
from dashboard.ingest.consumer import CATCH_UP_SPAN, IngestConsumer
from dashboard.models import Node, StoredEvent
from tests.dashboard.conftest import SITE, FakeNode
from tests.support.receipts import ack_seq, resend_body

pytestmark = pytest.mark.integration


def connect(broker, client_id: str) -> MqttLink:
    link = MqttLink(MqttSettings(host=broker.host, port=broker.port), client_id=client_id)
    link.start()
    assert link.connected.wait(30), link.last_error
    return link


class NodeSide:
    """The node's end of the link: publishes events and records acks and resend requests."""

    def __init__(self, broker, node: FakeNode):
        self.node = node
        self.link = connect(broker, f"node-{node.name}")
        self.acks: queue.Queue[int] = queue.Queue()
        self.resends: queue.Queue[dict] = queue.Queue()
        self.link.subscribe(
            topic_for(SITE, node.name, "ack"), lambda t, p: self.acks.put(ack_seq(p))
        )
        self.link.subscribe(
            topic_for(SITE, node.name, "resend"), lambda t, p: self.resends.put(resend_body(p))
        )
        # Resend requests are not retained: one published before the broker has this SUBSCRIBE
        # (a separate connection, so no ordering) would never reach us.
        assert self.link.wait_subscribed(30), self.link.last_error

    def send(self, *events) -> None:
        for ev in events:
            self.link.publish(ev.topic(), ev.to_bytes(), qos=1)

    def state(self, **extra) -> None:
        self.link.publish(
            topic_for(SITE, self.node.name, "state"),
            canonical_json({"state": "online", **extra}),
            qos=1,
            retain=True,
        )

    def gap_resend(self, timeout: float = 30) -> dict:
        """The next resend request for a gap, past the catch-up requests (from the node's ack
        up to CATCH_UP_SPAN) a node approved after the consumer started is sent as well."""
        while True:
            got = self.resends.get(timeout=timeout)
            if got["to"] - got["from"] + 1 != CATCH_UP_SPAN:
                return got

    def ack_reaching(self, seq: int, timeout: float = 30) -> int:
        while True:
            got = self.acks.get(timeout=timeout)
            if got >= seq:
                return got


@pytest.fixture
def bus() -> Bus:
    return Bus()


@pytest.fixture
def consumer(broker, sm, bus) -> Iterator[IngestConsumer]:
    link = connect(broker, "dashboard")
    c = IngestConsumer(
        sm, link, site=SITE, bus=bus, gap_timeout_s=0.3, tick_s=0.05, resend_interval_s=0.2
    )
    c.start()
    assert link.wait_subscribed(30), link.last_error  # events sent before would be lost
    yield c
    c.stop()
    link.stop()


@pytest.fixture
def side(broker, consumer, node) -> Iterator[NodeSide]:
    s = NodeSide(broker, node)
    yield s
    s.link.stop()


def test_enrolment_then_events_are_stored_and_acked(side, consumer, sm, node, bus):
    sub = bus.subscribe(("event", "anomaly"))
    side.state(public_key=node.public)
    side.send(node.event())  # before approval: refused, not acked
    assert consumer.wait_processed(2, 30)
    with sm() as s:
        assert s.get(Node, "gw1").key_status == "pending"
        assert s.query(StoredEvent).count() == 0
        services.approve_node(s, "admin", "gw1", roles=["door_gateway"], public_key=node.public)
        s.commit()
    assert consumer.counters["node_not_approved"] == 1
    side.send(*node.events(4))
    resend = side.gap_resend()  # seq 1 was refused: asked for again
    assert resend == {"from": 1, "to": 1}
    node.seq, node.prev = 0, "0" * 64
    side.send(*node.events(5))  # the node re-sends everything from its journal
    assert side.ack_reaching(5) == 5
    with sm() as s:
        assert sorted(
            s.scalars(StoredEvent.__table__.select().with_only_columns(StoredEvent.seq))
        ) == [1, 2, 3, 4, 5]
    seqs = []
    while len(seqs) < 5:
        m = sub.get(timeout=30)
        assert m is not None, f"only {seqs} reached the bus"
        if m.topic == "event":
            seqs.append(m.data["seq"])
    assert sorted(seqs) == [1, 2, 3, 4, 5]


def test_retained_ack_holds_highest_contiguous(broker, side, consumer, sm, node):
    with sm() as s:
        node.enrol(s)
    evs = node.events(5)
    side.send(evs[0], evs[1], evs[4])
    assert side.gap_resend() == {"from": 3, "to": 4}
    assert side.ack_reaching(2) == 2
    side.send(evs[2], evs[3])
    assert side.ack_reaching(5) == 5
    late = queue.Queue()
    fresh = connect(broker, "late-reader")
    fresh.subscribe(topic_for(SITE, "gw1", "ack"), lambda t, p: late.put(p))
    ack = open_ack(late.get(timeout=30), (consumer.receipt_key.public_key(),), site=SITE,
                   node="gw1")  # retained, signed, bound to what was stored at seq 5
    assert (ack.seq, ack.hash) == (5, evs[4].hash)
    fresh.stop()


def test_unfilled_gap_raises_anomaly_on_the_bus(side, consumer, sm, node, bus):
    sub = bus.subscribe(("anomaly",))
    with sm() as s:
        node.enrol(s)
    evs = node.events(3)
    side.send(evs[0], evs[2])
    while True:
        m = sub.get(timeout=30)
        assert m is not None, "no gap anomaly within 30 s"
        if m.data["kind"] == "gap":
            break
    assert m.data["detail"]["from"] == 2 and m.data["detail"]["to"] == 2
    assert side.gap_resend() == {"from": 2, "to": 2}


def test_garbage_never_stops_the_consumer(side, consumer, sm, node):
    with sm() as s:
        node.enrol(s)
    side.link.publish(f"secroom/v1/{SITE}/gw1/events/x.y", b"\xff\x00garbage", qos=1)
    side.link.publish(f"secroom/v1/{SITE}/gw1/events/x.y", b"[]", qos=1)
    side.link.publish(f"secroom/v1/{SITE}/gw1/state", b"{{", qos=1)
    side.send(node.event())
    assert side.ack_reaching(1) == 1
    counts = consumer.counters
    assert counts["malformed"] == 2 and counts["bad_state"] == 1 and counts["stored"] == 1


def test_lost_tail_is_asked_for_again(broker, sm, node):
    """Events lost in flight leave no gap; the periodic catch-up asks for what follows the ack."""
    with sm() as s:
        node.enrol(s)
    link = connect(broker, "dashboard-catchup")
    c = IngestConsumer(sm, link, site=SITE, bus=Bus(), tick_s=0.05, catch_up_interval_s=0.1)
    c.start()
    assert link.wait_subscribed(30), link.last_error  # events sent before would be lost
    side = NodeSide(broker, node)
    try:
        evs = node.events(3)
        side.send(evs[0])
        assert side.ack_reaching(1) == 1
        # evs[1] and evs[2] "lost": never published
        while True:
            req = side.resends.get(timeout=30)
            if req["from"] == 2:
                break
        assert req["to"] >= 3
        side.send(evs[1], evs[2])
        assert side.ack_reaching(3) == 3
    finally:
        side.link.stop()
        c.stop()
        link.stop()


def test_a_database_error_in_the_catch_up_is_counted_and_asked_again(broker, sm, node):
    """The catch-up's query fails (a connection killed under it): the tick goes on, the error
    is counted, and the next tick asks the nodes again (the ingest thread once died here)."""
    with sm() as s:
        node.enrol(s)
    link = connect(broker, "dashboard-dberror")
    c = IngestConsumer(sm, link, site=SITE, bus=Bus(), catch_up_interval_s=0)
    side = NodeSide(broker, node)
    failures = [OperationalError("SELECT", {}, Exception("connection lost"))]

    def flaky_sessions() -> Session:
        if failures:
            raise failures.pop()
        return sm()

    c.sessionmaker = flaky_sessions  # type: ignore[assignment]
    try:
        c._tick()
        assert (c.db_errors, c.catch_ups) == (1, 0)
        assert "connection lost" in (c.last_error or "")
        c._tick()
        assert c.catch_ups == 1
        assert side.resends.get(timeout=30)["from"] == 1
    finally:
        side.link.stop()
        link.stop()


def test_a_bad_signature_inside_a_chain_is_raised_by_the_audit(side, consumer, sm, node, bus):
    from tests.dashboard.ingest.test_audit import resigned

    sub = bus.subscribe(("anomaly",))
    with sm() as s:
        node.enrol(s)
    evs = node.events(6)
    evs[2] = resigned(evs[2])
    for ev in evs:  # queued together: one batch, so seq 3 is inside a chain-verified run
        consumer.submit(ev.topic(), ev.to_bytes())
    m = sub.get(timeout=30)
    assert m is not None, "no anomaly within 30 s"
    assert (m.data["kind"], m.data["node"], m.data["detail"]["last_seq"]) == (
        "bad_signature",
        "gw1",
        3,
    )
    # stored (content proven by the chain) and found by the audit, not rejected up front
    assert consumer.counters["bad_signature_stored"] == 1
    with sm() as s:
        assert s.query(StoredEvent).filter_by(node="gw1").count() == 6


def test_a_node_approved_later_is_asked_for_what_it_sent_while_pending(broker, sm, node):
    with sm() as s:
        node.enrol(s, status="pending")
    link = connect(broker, "dashboard-approval")
    c = IngestConsumer(sm, link, site=SITE, bus=Bus(), tick_s=0.05, catch_up_interval_s=600)
    c.start()
    assert link.wait_subscribed(30), link.last_error  # events sent before would be lost
    side = NodeSide(broker, node)
    try:
        evs = node.events(2)
        side.send(*evs)
        assert c.wait_processed(2, 30)
        assert c.counters["node_not_approved"] == 2
        with sm() as s:  # the admin approves it (the periodic catch-up is 10 minutes away)
            row = s.get(Node, node.name)
            row.key_status, row.roles = "approved", "door_gateway"
            s.commit()
        assert side.resends.get(timeout=30)["from"] == 1
        side.send(*evs)
        assert side.ack_reaching(2) == 2
    finally:
        side.link.stop()
        c.stop()
        link.stop()


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_lost_database_connections_lose_no_event(side, consumer, sm, node, engine):
    with sm() as s:
        node.enrol(s)
    side.send(*node.events(3))
    assert side.ack_reaching(3) == 3
    # from a connection of its own (one from the pool could be the consumer's idle one):
    # every other session of this test's schema (its application_name), the consumer's too;
    # other tests running beside this one keep theirs
    outside = create_engine(engine.url, poolclass=NullPool)
    with outside.connect() as admin:
        killed = admin.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'"
                " AND application_name = current_setting('application_name')"
            )
        )
    outside.dispose()
    assert killed >= 1
    side.send(*node.events(3))
    assert side.ack_reaching(6) == 6
    with sm() as s:
        assert s.query(StoredEvent).count() == 6


def test_the_inbox_is_bounded_in_bytes_as_well_as_in_messages():
    """64 KiB events: a count bound of 100,000 would hold 6.4 GB; the byte bound stops the
    producer (it waits; here, stopping, it is told the item was not taken)."""
    import threading

    from dashboard.ingest.inbox import Inbox

    inbox = Inbox(100_000, 1 << 20, lambda m: len(m[1]))
    stop = threading.Event()
    big = ("t", b"x" * 65536)
    for _ in range(16):
        assert inbox.put(big, stop)
    stop.set()
    assert not inbox.put(big, stop) and inbox.bytes == 1 << 20
    assert len(inbox.take(4, 0, 0)) == 4 and inbox.bytes == 12 * 65536
