"""The dashboard's broker link in a child process, against a real Mosquitto."""

from __future__ import annotations

import os
import queue
import signal

import pytest

from controller.mqtt import MqttError, MqttLink, MqttSettings
from dashboard.ingest.link_process import LinkProcess
from tests.support.receipts import ack_seq

pytestmark = pytest.mark.integration


def settings(broker) -> MqttSettings:
    return MqttSettings(host=broker.host, port=broker.port)


@pytest.fixture
def other(broker):
    link = MqttLink(settings(broker), client_id="other")
    link.start()
    assert link.connected.wait(30), link.last_error
    yield link
    link.stop()


@pytest.fixture
def remote(broker):
    link = LinkProcess(settings(broker), client_id="dash")
    link.start()
    yield link
    link.stop()


def test_messages_flow_both_ways_in_order(remote, other):
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    remote.subscribe("t/+/events/#", lambda t, p: got.put((t, p)))
    assert remote.wait_subscribed(30)
    for i in range(500):
        other.publish(f"t/n{i % 3}/events/x.y", str(i).encode(), qos=1)
    received = [got.get(timeout=30) for _ in range(500)]
    assert [int(p) for _, p in received] == list(range(500))
    assert received[4][0] == "t/n1/events/x.y"
    back: queue.Queue[bytes] = queue.Queue()
    other.subscribe("t/ack", lambda t, p: back.put(p))
    assert other.wait_subscribed(30)
    remote.publish("t/ack", b'{"seq":5}', retain=True)
    assert back.get(timeout=30) == b'{"seq":5}'
    assert remote.stats["messages"] >= 500


def test_a_killed_child_is_restarted_with_its_subscriptions_and_retained(remote, other, broker):
    got: queue.Queue[bytes] = queue.Queue()
    remote.subscribe("t/in", lambda t, p: got.put(p))
    assert remote.wait_subscribed(30)
    remote.publish("t/ack", b"1", retain=True)
    first_pid = remote.pid
    os.kill(first_pid, signal.SIGKILL)
    assert remote.wait_restarted(1, 30) and remote.pid != first_pid
    assert remote.stats["disconnects"] >= 1
    other.publish("t/in", b"after", qos=1)
    assert got.get(timeout=30) == b"after"
    # the retained ack is on the broker (published again by the new child)
    late: queue.Queue[bytes] = queue.Queue()
    other.subscribe("t/ack", lambda t, p: late.put(p))
    assert late.get(timeout=30) == b"1"


def test_publish_while_disconnected_raises(broker):
    link = LinkProcess(settings(broker), client_id="dash")
    with pytest.raises(MqttError):
        link.publish("t/x", b"1")
    with pytest.raises(MqttError):
        link.subscribe("t/#/x", lambda t, p: None)


def test_batches_reach_a_bulk_subscriber_in_order(remote, other):
    batches: queue.Queue[list[tuple[str, bytes]]] = queue.Queue()
    singles: queue.Queue[bytes] = queue.Queue()
    remote.subscribe_many(["t/+/events/#", "t/+/state"], batches.put)
    remote.subscribe("t/other", lambda t, p: singles.put(p))
    assert remote.wait_subscribed(30)
    for i in range(300):
        other.publish(f"t/n{i % 2}/events/x.y", str(i).encode(), qos=1)
    other.publish("t/n0/state", b"s", qos=1)
    other.publish("t/other", b"o", qos=1)
    got: list[tuple[str, bytes]] = []
    while len(got) < 301:
        got.extend(batches.get(timeout=30))
    assert [int(p) for _, p in got[:300]] == list(range(300))
    assert got[300] == ("t/n0/state", b"s")
    assert singles.get(timeout=30) == b"o"  # and not in a batch


def test_the_ingest_consumer_over_a_link_process(broker, sm):
    from dashboard.bus import Bus
    from dashboard.ingest.consumer import IngestConsumer
    from tests.dashboard.conftest import SITE, FakeNode

    node = FakeNode()
    with sm() as s:
        node.enrol(s)
    link = LinkProcess(settings(broker), client_id="dash")
    link.start()
    consumer = IngestConsumer(sm, link, site=SITE, bus=Bus())
    consumer.start()
    sender = MqttLink(settings(broker), client_id="gw1")
    acks: queue.Queue[bytes] = queue.Queue()
    sender.subscribe(f"secroom/v1/{SITE}/gw1/ack", lambda t, p: acks.put(p))
    sender.start()
    try:
        assert link.wait_subscribed(30) and sender.wait_subscribed(30)
        for ev in node.events(200):
            sender.publish(ev.topic(), ev.to_bytes(), qos=1)
        while ack_seq(acks.get(timeout=30)) != 200:
            pass
        assert consumer.counters["stored"] == 200
    finally:
        sender.stop()
        consumer.stop()
        link.stop()
