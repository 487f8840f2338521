"""A gateway's Prometheus metrics, scraped over HTTP from prometheus-client's own server: door
decisions by door, result and reason; journal, delivery and acks; readers; and no person."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.config import ConfigError, parse_config
from controller.gateway import Gateway
from controller.gpio import make_pin_factory
from controller.metrics import MetricsServer, NodeCollector, node_registry, parse_listen
from readers.fake import FakeReader
from tests.controller.gateway_kit import ALICE_UID, BOB_UID, DOOR, MALLORY_UID, make_kit
from tests.support.mosquitto import Broker

pytestmark = pytest.mark.integration
IN, OUT = "Virtual PCD 00 00", "Virtual PCD 00 01"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def served(tmp_path: Path, broker: Broker) -> Iterator[tuple[Gateway, FakeReader, int]]:
    kit = make_kit(tmp_path / "gw", mqtt_port=broker.port, backend="fake", unlock_s=0.05)
    reader = FakeReader(readers=(IN, OUT))
    gateway = Gateway(kit.config, reader=reader, pin_factory=make_pin_factory("mock"))
    gateway.start()
    server = MetricsServer("127.0.0.1:0", node_registry(NodeCollector(
        gateway.runtime, clock_state=gateway.clock_state,
        policy=lambda: gateway.policies.current, gateway=gateway)))
    server.start()
    try:
        assert gateway.runtime.link.connected.wait(10)
        yield gateway, reader, server.port
    finally:
        server.stop()
        gateway.stop()


def test_decisions_journal_and_readers_are_exported_without_people(
        served: tuple[Gateway, FakeReader, int]) -> None:
    gateway, reader, port = served
    for uid, at in ((ALICE_UID, IN), (MALLORY_UID, IN), (ALICE_UID, OUT), (BOB_UID, IN)):
        reader.present(uid, at)
        reader.remove(at)
    head = gateway.runtime.journal.head()[0]
    assert gateway.runtime.wait_delivered(head, 10)
    m = scrape(port)
    door = ("door", DOOR)
    assert m[("secroom_door_decisions_total", (door, ("reason", "none"),
                                               ("result", "granted")))] == 3
    assert m[("secroom_door_decisions_total", (door, ("reason", "unknown_card"),
                                               ("result", "denied")))] == 1
    assert m[("secroom_card_taps_total", ())] == 4
    assert m[("secroom_reader_connected", (("reader", IN),))] == 1
    assert m[("secroom_journal_events_total", ())] == head
    assert m[("secroom_journal_delivered_events_total", ())] == head
    # no dashboard acknowledges in this room: everything is pending, the oldest since start
    assert m[("secroom_journal_acked_events_total", ())] == 0
    assert m[("secroom_journal_pending_events", ())] == head
    first = gateway.runtime.journal.events(1, 1)[0].when.timestamp()
    assert m[("secroom_journal_oldest_pending_timestamp_seconds", ())] == pytest.approx(first)
    assert m[("secroom_mqtt_connected", ())] == 1
    assert m[("secroom_policy_applied_version", ())] == 1
    assert m[("secroom_door_unlocked", (door,))] in (0, 1)
    assert m[("secroom_receipts_refused_total", (("receipt", "ack"),))] == 0
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for person in ("alice", "Alice", "bob", ALICE_UID, BOB_UID, MALLORY_UID):
        assert person not in text


def test_a_lost_broker_shows_as_disconnected(served: tuple[Gateway, FakeReader, int],
                                             broker: Broker) -> None:
    gateway, _, port = served
    broker.kill()
    link = gateway.runtime.link
    from tests.support import wait_until

    wait_until(lambda: not link.connected.is_set(), 10, "the link to notice")  # no event
    m = scrape(port)
    assert m[("secroom_mqtt_connected", ())] == 0
    assert m[("secroom_mqtt_disconnects_total", ())] == 1


def test_listen_must_be_an_ip_and_port(tmp_path: Path) -> None:
    assert parse_listen("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_listen("[::1]:9108") == ("::1", 9108)
    for bad in ("localhost:9108", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000"):
        with pytest.raises(ValueError):
            parse_listen(bad)
    base = {"node": {"name": "gw1", "site": "hq"}, "policy": {"trusted_keys": ["k.pub"]}}
    assert parse_config(base, base=tmp_path).metrics.listen is None  # off by default
    with pytest.raises(ConfigError, match="listen"):
        parse_config({**base, "metrics": {"listen": "anywhere"}}, base=tmp_path)
