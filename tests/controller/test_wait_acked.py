"""A short-lived node (the backup job) waits for the dashboard's ack, not only the broker's
PUBACK, and answers resend requests meanwhile: the soak found backup events stranded in the
job's journal when the dashboard had missed them (down, or the node not yet approved), because
the job exited before the dashboard asked for them again."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from backup.events import BackupVerified
from controller.envelope import topic_for
from controller.mqtt import MqttLink
from controller.runtime import NodeRuntime, RuntimeSettings
from tests.controller.conftest import DASHBOARD, NODE, SITE, fast_mqtt
from tests.support.mosquitto import Broker

VERIFIED = BackupVerified(mode="structure", result="ok", duration_s=0.1)

pytestmark = pytest.mark.integration


def test_wait_acked_follows_the_dashboards_ack_and_answers_resends(
    broker: Broker, make_settings: Callable[..., RuntimeSettings]
) -> None:
    runtime = NodeRuntime(make_settings(broker.port))
    dashboard = MqttLink(fast_mqtt(broker.port), client_id="fake-dashboard")
    copies: list[bytes] = []
    again = threading.Event()

    def on_event(_topic: str, payload: bytes) -> None:
        copies.append(payload)
        if len(copies) > head_seen[0]:  # a copy beyond the first delivery: the resend
            again.set()

    head_seen = [10**9]
    dashboard.subscribe(topic_for(SITE, NODE, "events") + "/#", on_event)
    dashboard.start()
    runtime.start()
    try:
        assert dashboard.wait_subscribed(10)  # the node's first events are not missed
        head = runtime.emit("backup.verified", VERIFIED).seq
        assert runtime.wait_delivered(head, 10)  # the broker has it: not enough
        assert not runtime.wait_acked(head, 0.2)
        head_seen[0] = head
        dashboard.publish(
            topic_for(SITE, NODE, "resend"), DASHBOARD.resend(SITE, NODE, 1, head), qos=1
        )
        assert again.wait(10), "the node, still waiting for the ack, re-sent the range"
        digest = runtime.journal.hash_at(head) or ""
        dashboard.publish(
            topic_for(SITE, NODE, "ack"), DASHBOARD.ack(SITE, NODE, head, digest), qos=1,
            retain=True,
        )
        assert runtime.wait_acked(head, 10)
    finally:
        runtime.stop()
        dashboard.stop()


class _FakeRuntime:
    """wait_acked answers from a script; each call may bump the publisher's counters."""

    def __init__(self, script: list[tuple[bool, int]]) -> None:
        self.script = script
        self.calls = 0
        self.offered: list[tuple[int, int]] = []
        self.publisher = type(
            "P",
            (),
            {
                "stats": {"acks": 0, "resent": 0},
                "resend": lambda _p, a, b: self.offered.append((a, b)),
            },
        )()
        self.journal = type("J", (), {"ack": 2})()

    def wait_acked(self, seq: int, timeout: float) -> bool:
        acked, resent = self.script[self.calls]
        self.calls += 1
        self.publisher.stats["resent"] += resent
        return acked


def test_a_feature_run_waits_while_the_dashboard_talks_and_not_when_it_is_silent() -> None:
    from controller.feature_node import wait_for_dashboard as _wait_for_dashboard

    at_once = _FakeRuntime([(True, 0)])
    assert _wait_for_dashboard(at_once, 5) and at_once.offered == []
    silent = _FakeRuntime([(False, 0), (False, 0)])
    assert not _wait_for_dashboard(silent, 5) and silent.calls == 2
    assert silent.offered == [(3, 5)], "what the dashboard has not acked is offered once more"
    talking = _FakeRuntime([(False, 0), (False, 2), (False, 1), (True, 0)])
    assert _wait_for_dashboard(talking, 5) and talking.calls == 4


def test_publisher_resend_offers_a_range_again(
    broker: Broker, make_settings: Callable[..., RuntimeSettings]
) -> None:
    runtime = NodeRuntime(make_settings(broker.port))
    seen: list[bytes] = []
    twice = threading.Event()
    listener = MqttLink(fast_mqtt(broker.port), client_id="listener")

    def on_event(_topic: str, payload: bytes) -> None:
        seen.append(payload)
        if len(seen) >= 4:  # node.started and one event, each twice
            twice.set()

    listener.subscribe(topic_for(SITE, NODE, "events") + "/#", on_event)
    listener.start()
    assert listener.wait_subscribed(10)  # subscribed before the node's first event
    runtime.start()
    try:
        head = runtime.emit("backup.verified", VERIFIED).seq
        assert runtime.wait_delivered(head, 10)
        runtime.publisher.resend(1, head)
        assert twice.wait(10)
        assert sorted(seen[:2]) == sorted(seen[2:4]), "the same signed events, again"
    finally:
        runtime.stop()
        listener.stop()
