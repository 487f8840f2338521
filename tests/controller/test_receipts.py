"""Acks and resend requests are signed receipts: a node prunes only on an ack signed by the
dashboard key it pins, addressed to it, newer than the last, within its head and naming the very
event it wrote at that seq. Anything else is refused, counted, journaled (so the dashboard
raises it) and prunes nothing. Before this, a retained unsigned ``{"seq": N}`` on a node's ack
topic made it delete events no dashboard had stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.envelope import canonical_json, topic_for
from controller.journal import Journal
from controller.receipts import (
    Ack,
    ReceiptRefused,
    Resend,
    open_ack,
    open_resend,
    sign_ack,
    sign_resend,
)
from controller.runtime import NodeRuntime
from tests.controller.conftest import DASHBOARD, NODE, SITE, Collector
from tests.controller.test_publisher import Clock, emit_n
from tests.support.mosquitto import Broker
from tests.support.receipts import DashboardSigner

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
TRUSTED = (DASHBOARD.key.public_key(),)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "j.sqlite", node=NODE, site=SITE, key=Ed25519PrivateKey.generate(),
                boot="b")
    j.append_many([("door.rex", {"i": i}) for i in range(10)], now=NOW, clock="synced")
    yield j
    j.close()


def _take(journal: Journal, blob: bytes) -> bool:
    ack = open_ack(blob, TRUSTED, site=SITE, node=NODE)
    return journal.accept_receipt("ack", ack.counter, ack=(ack.seq, ack.hash))


def test_a_signed_ack_of_the_nodes_own_event_is_taken_once(journal: Journal) -> None:
    blob = DASHBOARD.ack(SITE, NODE, 7, journal.hash_at(7) or "")
    assert _take(journal, blob) and journal.ack == 7
    assert not _take(journal, blob)  # the retained ack again on reconnect: a no-op
    assert journal.ack == 7


def test_an_older_ack_of_no_more_than_the_taken_one_is_stale_not_refused(
        journal: Journal) -> None:
    """Two replicas' retained acks can cross at a lease hand-over, and a site bridge can hand
    over its retained ack before the ones it queued: an older genuine ack that acknowledges
    no more than the ack taken changes nothing and is no alarm."""
    signer = DashboardSigner(DASHBOARD.key)
    older = signer.ack(SITE, NODE, 4, journal.hash_at(4) or "")
    newer = signer.ack(SITE, NODE, 7, journal.hash_at(7) or "")
    assert _take(journal, newer) and journal.ack == 7
    before = journal.receipt_counter("ack")
    assert not _take(journal, older)  # stale: a no-op
    assert (journal.ack, journal.receipt_counter("ack")) == (7, before)
    # an older counter that would acknowledge more is still a replay
    beyond = sign_ack(DASHBOARD.key, Ack(SITE, NODE, 9, journal.hash_at(9) or "", 1))
    with pytest.raises(ReceiptRefused) as refused:
        _take(journal, beyond)
    assert refused.value.reason == "replayed"
    # and an older one naming an event this node did not write is not ours
    forged = sign_ack(DASHBOARD.key, Ack(SITE, NODE, 4, "f" * 64, 1))
    with pytest.raises(ReceiptRefused):
        _take(journal, forged)


@pytest.mark.parametrize("case", ["unsigned", "unknown_key", "bad_signature", "wrong_node",
                                  "beyond_head", "not_ours", "replayed", "as_policy"])
def test_a_bad_ack_is_refused_and_records_nothing(journal: Journal, case: str) -> None:
    good_hash = journal.hash_at(5) or ""
    if case == "replayed":
        newer = DashboardSigner(DASHBOARD.key)
        for _ in range(5):
            blob = newer.ack(SITE, NODE, 3, journal.hash_at(3) or "")
        assert _take(journal, blob)
        blob = sign_ack(DASHBOARD.key, Ack(SITE, NODE, 6, journal.hash_at(6) or "", 2))
    elif case == "unsigned":
        blob = canonical_json({"seq": 5})
    elif case == "unknown_key":
        blob = sign_ack(Ed25519PrivateKey.generate(), Ack(SITE, NODE, 5, good_hash, 9))
    elif case == "bad_signature":
        raw = json.loads(DASHBOARD.ack(SITE, NODE, 5, good_hash))
        raw["ack"]["seq"] = 9
        blob = canonical_json(raw)
    elif case == "wrong_node":
        blob = DASHBOARD.ack(SITE, "gw2", 5, good_hash)
    elif case == "beyond_head":
        blob = DASHBOARD.ack(SITE, NODE, 11, good_hash)
    elif case == "not_ours":  # an ack of another journal's seq 5 (a re-installed node's)
        blob = DASHBOARD.ack(SITE, NODE, 5, "f" * 64)
    else:  # a policy signature does not pass as an ack
        raw = json.loads(DASHBOARD.ack(SITE, NODE, 5, good_hash))
        blob = canonical_json({"key_id": raw["key_id"], "policy": raw["ack"], "sig": raw["sig"]})
    before = (journal.ack, journal.receipt_counter("ack"))
    with pytest.raises(ReceiptRefused) as refused:
        _take(journal, blob)
    expected = {"as_policy": "malformed"}.get(case, case)
    assert refused.value.reason == expected
    assert (journal.ack, journal.receipt_counter("ack")) == before


def test_resend_requests_are_signed_and_bound_too() -> None:
    blob = sign_resend(DASHBOARD.key, Resend(SITE, NODE, 3, 9, 4))
    assert open_resend(blob, TRUSTED, site=SITE, node=NODE) == Resend(SITE, NODE, 3, 9, 4)
    for bad, reason in ((canonical_json({"from": 1, "to": 9}), "unsigned"),
                        (sign_resend(DASHBOARD.key, Resend(SITE, "gw2", 1, 9, 5)), "wrong_node"),
                        (DASHBOARD.ack(SITE, NODE, 1, "x"), "malformed")):
        with pytest.raises(ReceiptRefused, match=reason):
            open_resend(bad, TRUSTED, site=SITE, node=NODE)


@pytest.mark.integration
def test_an_unsigned_retained_ack_prunes_nothing(
    broker: Broker, make_settings: Callable[..., object],
    collector_factory: Callable[[int], Collector],
) -> None:
    """The attack the review found: with a leaked broker password, a retained ``{"seq": N}``
    on the node's ack topic. The node refuses it, journals the refusal, prunes nothing; a
    signed ack of what the dashboard really stored then prunes as before."""
    clock = Clock()
    runtime = NodeRuntime(make_settings(broker.port, prune_interval_s=0.05), clock=clock)
    try:
        with collector_factory(broker.port) as col:
            runtime.start()
            head = emit_n(runtime, 20)
            assert col.wait_all(head, 10)
            forged = canonical_json({"seq": head})
            col.link.publish(topic_for(SITE, NODE, "ack"), forged, retain=True)
            refused = col.wait_for_kind("node.receipt_refused", 1, 10)[0]
            assert (refused.data["what"], refused.data["reason"]) == ("ack", "unsigned")
            runtime.publisher.prune_now()
            assert runtime.journal.ack == 0 and runtime.journal.first() == 1
            assert runtime.publisher.stats["acks_refused"] == 1
            assert col.wait_state(lambda s: s.get("receipts", {}).get("acks_refused") == 1, 10)
            col.ack(head)
            assert runtime.wait_acked(head, 10)
            clock.now += timedelta(days=31)  # acknowledged rows stay for retention_days
            runtime.publisher.prune_now()
            assert runtime.journal.first() == head
    finally:
        runtime.stop()


@pytest.mark.integration
def test_resend_requests_beyond_the_burst_are_dropped(
    broker: Broker, make_settings: Callable[..., object],
    collector_factory: Callable[[int], Collector], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from controller import publisher

    monkeypatch.setattr(publisher, "RESEND_BURST", 3)
    runtime = NodeRuntime(make_settings(broker.port))
    try:
        with collector_factory(broker.port) as col:
            runtime.start()
            head = emit_n(runtime, 5)
            assert col.wait_all(head, 10)
            for _ in range(5):
                col.request_resend(1, 1)
            col.request_resend(2, 2)  # the sixth: throttled too
            col.ack(head)  # a marker: handled after the six requests, in order
            assert runtime.wait_acked(head, 10)
            assert runtime.publisher.stats["resend_throttled"] == 3
            assert col.wait_copies(1, 4, 10) and col.copies[2] == 1
    finally:
        runtime.stop()


@pytest.mark.integration
def test_an_oversized_receipt_is_counted_and_never_read(
    broker: Broker, make_settings: Callable[..., object],
    collector_factory: Callable[[int], Collector],
) -> None:
    """Every subscriber has a payload limit: 3 MiB on the ack topic is dropped by the link
    before the publisher parses it (before, it was handed over and parsed)."""
    runtime = NodeRuntime(make_settings(broker.port))
    try:
        with collector_factory(broker.port) as col:
            runtime.start()
            head = emit_n(runtime, 3)
            assert col.wait_all(head, 10)
            col.link.publish(topic_for(SITE, NODE, "ack"), b"{" + b" " * (3 << 20) + b"}")
            col.ack(head)  # handled after it, in order
            assert runtime.wait_acked(head, 10)
            assert runtime.link.stats["oversized"] == 1
            assert runtime.publisher.stats["acks_refused"] == 0
    finally:
        runtime.stop()


def test_a_flood_of_receipts_waits_in_a_bounded_queue(tmp_path: Path) -> None:
    """Each receipt costs a signature check on the publisher thread: past RECEIPTS_QUEUED
    waiting, the rest are dropped and counted (memory stays bounded under a flood), but for
    the newest ack, kept in one slot (acks are cumulative: the last one still prunes)."""
    from controller.mqtt import MqttLink, MqttSettings
    from controller.publisher import RECEIPTS_QUEUED, Publisher

    j = Journal(tmp_path / "j.sqlite", node=NODE, site=SITE, key=Ed25519PrivateKey.generate(),
                boot="b")
    try:
        pub = Publisher(j, MqttLink(MqttSettings(), client_id="x"), clock=lambda: NOW,
                        trusted=TRUSTED)  # not started: nothing drains the queue
        for i in range(RECEIPTS_QUEUED + 44):
            pub.on_ack_message("t", b'{"n": %d}' % i)
        pub.on_resend_message("t", b"{}")
        assert pub.stats["receipts_dropped"] == 44  # 43 acks the slot let go, the resend
        assert pub._overflow_ack == b'{"n": %d}' % (RECEIPTS_QUEUED + 43)  # the newest
    finally:
        j.close()


def test_an_enrol_command_is_bound_to_its_kind_node_and_limits() -> None:
    from controller.receipts import EnrolCommand, open_enrol, sign_enrol

    key = DASHBOARD.key
    cmd = EnrolCommand(SITE, NODE, "Virtual PCD 00 00", "req-1", 60, 3, "2026-12-07T09:00:00Z")
    assert open_enrol(sign_enrol(key, cmd), TRUSTED, site=SITE, node=NODE) == cmd
    # an ack's signature does not pass as an enrol command (the contexts differ)
    ack = json.loads(sign_ack(key, Ack(SITE, NODE, 1, "h", 3)))
    forged = canonical_json({"key_id": ack["key_id"], "sig": ack["sig"],
                             "enrol": {"site": SITE, "node": NODE, "reader": "r",
                                       "request": "x", "wait_s": 60, "issued_at": "",
                                       "counter": 3}})
    with pytest.raises(ReceiptRefused) as refused:
        open_enrol(forged, TRUSTED, site=SITE, node=NODE)
    assert refused.value.reason == "bad_signature"
    for bad, why in ((EnrolCommand(SITE, NODE, "r", "x", 121, 3), "wait_s"),
                     (EnrolCommand(SITE, NODE, "", "x", 60, 3), "reader"),
                     (EnrolCommand(SITE, NODE, "r", "x" * 65, 60, 3), "request")):
        with pytest.raises(ReceiptRefused, match=why):
            open_enrol(sign_enrol(key, bad), TRUSTED, site=SITE, node=NODE)
    with pytest.raises(ReceiptRefused) as refused:
        open_enrol(sign_enrol(key, cmd), TRUSTED, site=SITE, node="gw2")
    assert refused.value.reason == "wrong_node"
