from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from controller.envelope import canonical_json, topic_for
from controller.events import DoorRex
from controller.journal import Journal
from controller.keys import load_private
from controller.publisher import DeliveryMark, prune_mark, resend_range, retention_cutoff
from controller.runtime import NodeRuntime, RuntimeSettings
from tests.controller.conftest import NODE, SITE, Collector
from tests.support.mosquitto import Broker

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


# -- pure decisions ------------------------------------------------------------------------


def test_delivery_mark_is_contiguous() -> None:
    mark = DeliveryMark(10)
    assert not mark.acked(12) and not mark.acked(13)
    assert mark.delivered == 10
    assert mark.acked(11) and mark.delivered == 13
    assert not mark.acked(5) and mark.delivered == 13


@pytest.mark.parametrize(
    ("ack", "delivered", "first_recent", "expected"),
    [
        (50, 80, None, 50),  # acknowledged and all old: below the ack
        (50, 80, 30, 30),  # acknowledged rows inside retention stay (a recovered dashboard
        (50, 80, 1, 1),  # asks for them again)
        (0, 80, None, 81),  # no ack, all delivered events are old
        (0, 80, 60, 60),  # no ack, keep what is inside retention
        (0, 20, 60, 21),  # no ack, never beyond what the broker took
        (0, 0, None, 1),  # nothing delivered: nothing to prune
    ],
)
def test_prune_mark(ack: int, delivered: int, first_recent: int | None, expected: int) -> None:
    assert prune_mark(ack=ack, delivered=delivered, first_recent=first_recent) == expected


def test_resend_range_is_bounded() -> None:
    assert resend_range(5, 9, sent=100, resend_max=10) == (5, 9)
    assert resend_range(5, 900, sent=100, resend_max=10) == (5, 14)
    assert resend_range(5, 900, sent=7, resend_max=10) == (5, 7)
    assert resend_range(50, 60, sent=7, resend_max=10) is None


def test_retention_cutoff() -> None:
    assert retention_cutoff(T0, 30) == "2026-10-02T08:00:00.000000Z"


# -- against a real broker -------------------------------------------------------------------



class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def run(
    broker: Broker, make_settings: Callable[..., RuntimeSettings], clock: Clock
) -> Iterator[Callable[..., NodeRuntime]]:
    made: list[NodeRuntime] = []

    def start(**overrides: object) -> NodeRuntime:
        rt = NodeRuntime(make_settings(broker.port, **overrides), clock=clock)
        rt.start()
        made.append(rt)
        return rt

    yield start
    for rt in made:
        rt.stop()


def emit_n(rt: NodeRuntime, n: int) -> int:
    return rt.emit_many([("door.rex", DoorRex(door=f"d{i}")) for i in range(n)])[-1].seq


@pytest.mark.integration
def test_delivers_in_seq_order(
    broker: Broker, run: Callable[..., NodeRuntime], collector_factory: Callable[[int], Collector]
) -> None:
    with collector_factory(broker.port) as col:
        rt = run()
        head = emit_n(rt, 300)
        assert rt.wait_delivered(head, 10)
        assert col.wait_all(head, 10)
        assert list(col.events) == sorted(col.events)  # arrival order of first copies
        assert col.wire_count == head  # no faults: no duplicates either


@pytest.mark.integration
def test_keeps_everything_while_the_broker_is_away(
    broker: Broker, run: Callable[..., NodeRuntime], collector_factory: Callable[[int], Collector]
) -> None:
    rt = run()
    assert rt.wait_delivered(1, 10)
    broker.kill()
    head = emit_n(rt, 200)
    assert not rt.wait_delivered(head, 0.3)
    assert rt.journal.events(2, head, limit=500)[-1].seq == head
    broker.start()
    with collector_factory(broker.port) as col:
        assert rt.wait_delivered(head, 15)
        assert col.complete(head, 15)  # the collector was not there: it asks for the range


@pytest.mark.integration
def test_resend_and_bad_requests(
    broker: Broker, run: Callable[..., NodeRuntime], collector_factory: Callable[[int], Collector]
) -> None:
    with collector_factory(broker.port) as col:
        rt = run(resend_max=4)
        head = emit_n(rt, 50)
        assert col.wait_all(head, 10)
        resend = topic_for(SITE, NODE, "resend")
        ack = topic_for(SITE, NODE, "ack")
        bad_resends = (b"not json", b'{"from": 5}', b'{"from": 9, "to": 2}',
                       b'{"from": -1, "to": 3}', b'{"from": 1, "to": 2, "x": 1}', b"\xff\xfe")
        for payload in bad_resends:
            col.link.publish(resend, payload)
        for payload in (b"[]", b'{"seq": "x"}', b'{"seq": -1}', canonical_json({"seq": 10**9})):
            col.link.publish(ack, payload)
        col.request_resend(10, 30)  # clamped to 10..13 by resend_max; sent after the garbage
        assert col.wait_copies(13, 2, 10)
        assert sum(col.copies[s] for s in range(1, head + 1)) == head + 4
        stats = rt.publisher.stats
        assert stats["resends_refused"] == 6 and stats["acks_refused"] == 4
        assert stats["resent"] == 4 and stats["resend_clamped"] == 1
        assert rt.journal.ack == 0
        assert rt.link.stats["handler_errors"] == 0
        # each kind of refusal is journaled once (at most one a minute), with its count
        refusals = col.wait_for_kind("node.receipt_refused", 4, 10)
        got = {(e.data["what"], e.data["reason"]) for e in refusals}
        assert got == {("ack", "malformed"), ("ack", "unsigned"), ("resend", "malformed"),
                       ("resend", "unsigned")}
        # still alive and delivering
        head = emit_n(rt, 5)
        assert col.complete(head, 10)


@pytest.mark.integration
def test_dashboard_ack_allows_prune_and_restart_continues(
    broker: Broker, run: Callable[..., NodeRuntime], collector_factory: Callable[[int], Collector],
    make_settings: Callable[..., RuntimeSettings], clock: Clock,
) -> None:
    with collector_factory(broker.port) as col:
        rt = run()
        head = emit_n(rt, 120)
        assert col.wait_all(head, 10)
        col.ack(100)
        col.request_resend(head, head)  # processed after the ack: a barrier
        assert col.wait_copies(head, 2, 10)
        assert rt.journal.ack == 100
        assert rt.publisher.prune_now() == 0  # acknowledged, but inside retention
        clock.now = T0 + timedelta(days=31)
        assert rt.publisher.prune_now() == 99
        assert rt.journal.first() == 100
        rt.stop()
        settings = make_settings(broker.port)
        reopened = Journal(settings.journal, node=NODE, site=SITE,
                           key=load_private(settings.key_file), boot="x")
        last_seq = reopened.head()[0]
        assert reopened.delivered == last_seq  # node.stopped included, persisted at stop
        reopened.close()
        wire = col.wire_count
        rt2 = run()
        assert rt2.wait_delivered(last_seq + 1, 10)
        assert col.wait_copies(last_seq + 1, 1, 10)
        assert col.wire_count == wire + 1  # only node.started: nothing old re-sent


@pytest.mark.integration
def test_retention_prunes_only_old_delivered_events(
    broker: Broker, run: Callable[..., NodeRuntime], clock: Clock
) -> None:
    rt = run(retention_days=30)
    delivered = emit_n(rt, 40)
    assert rt.wait_delivered(delivered, 10)
    broker.kill()
    head = emit_n(rt, 10)  # journaled, not delivered
    clock.now = T0 + timedelta(days=31)
    assert rt.publisher.prune_now() == delivered
    assert rt.journal.first() == delivered + 1
    assert rt.journal.head()[0] == head
    broker.start()
    assert rt.wait_delivered(head, 15)
