"""A replica's broker subscriptions follow its ingest leases: two replicas' consumers (leases on
a real PostgreSQL, lease rounds driven by the test) on a real Mosquitto, with the replica's
broker link as it runs (a child process) and as the other sites' links run (a thread). Each
replica's link receives only its leased nodes' events (counted at the link: the broker never
sends it the others'); when a lease moves, the old holder unsubscribes and the new one
subscribes and then asks the node to re-send what follows its ack, on the same connection, so
what the node re-sends reaches the new holder."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from controller.mqtt import MqttLink, MqttSettings
from dashboard.bus import Bus
from dashboard.db import Base, make_sessionmaker
from dashboard.ingest.consumer import IngestConsumer
from dashboard.ingest.leased import node_filter
from dashboard.ingest.link_process import LinkProcess
from dashboard.models import Node
from dashboard.replicas.leases import IngestLeases, owner
from tests.support.mosquitto import Broker

pytestmark = pytest.mark.integration

SITE = "site1"
NODES = [f"gw{i}" for i in range(8)]
WAIT = 60.0


@pytest.fixture
def sm(pg_engine: Engine) -> sessionmaker[Session]:
    Base.metadata.create_all(pg_engine)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with pg_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    sm = make_sessionmaker(pg_engine)
    with sm.begin() as s:
        for name in NODES:
            s.add(Node(name=name, site=SITE, roles="door_gateway", public_key="k",
                       key_status="approved", first_seen_at=datetime.now(UTC),
                       contiguous_seq=0, max_seq=0, events_stored=0, state="unknown",
                       health={}))
    return sm


@dataclass
class Replica:
    leases: IngestLeases
    link: LinkProcess | MqttLink
    consumer: IngestConsumer

    @property
    def received(self) -> int:
        """Messages the broker sent this replica's link (every topic)."""
        return int(self.link.stats.get("messages", 0))

    def stop(self) -> None:
        self.consumer.stop()
        self.link.stop()


def replica(sm: sessionmaker[Session], broker: Broker, name: str, kind: str) -> Replica:
    settings = MqttSettings(host=broker.host, port=broker.port, backoff_max_s=0.5)
    # the test runs the lease rounds: leases long enough not to lapse between them
    leases = IngestLeases(sm, replica=name, sites=[SITE], lease_s=300)
    link: LinkProcess | MqttLink = (
        LinkProcess(settings, client_id=f"dash-{name}") if kind == "process"
        else MqttLink(settings, client_id=f"dash-{name}"))
    consumer = IngestConsumer(sm, link, site=SITE, bus=Bus(), leases=leases, audit_processes=0,
                              tick_s=0.1)
    return Replica(leases, link, consumer)


def rounds(*replicas: Replica, times: int = 3) -> None:
    """Lease rounds in turn, as the heartbeats would run them, until the split settles."""
    for _ in range(times):
        for r in replicas:
            r.leases.renew()


def subscribed_to(r: Replica) -> set[str]:
    return {f.split("/")[3] for f in r.link.subscriptions if f.endswith("/events/#")}


def events(n: str) -> str:
    return f"secroom/v1/{SITE}/{n}/events/door.rex"


def settle(pub: MqttLink, reps: dict[str, Replica], before: dict[str, int]) -> dict[str, int]:
    """One message on every node's topic, then a last one on a node each replica holds: the
    broker sends a subscriber one publisher's messages in order, so once a replica's last one
    is in, every earlier one the broker meant for it is in too. Returns what each received."""
    for n in NODES:
        pub.publish(events(n), b"{}", qos=1)
    last = {name: sorted(r.leases.held)[0] for name, r in reps.items()}
    for node in last.values():
        pub.publish(events(node), b"{}", qos=1)
    for name, r in reps.items():
        until(lambda r=r, name=name: r.received >= before[name] + len(r.leases.held) + 1,
              f"{name}'s last message")
    return {name: r.received - before[name] for name, r in reps.items()}


def until(predicate: Callable[[], bool], what: str) -> None:
    """Poll a count another process reports (the link's child: nothing to subscribe to)."""
    pause = threading.Event()
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.05)


@pytest.mark.parametrize("kind", ["process", "thread"])
def test_a_replicas_subscriptions_follow_its_leases(sm: sessionmaker[Session], broker: Broker,
                                                    kind: str) -> None:
    a, b = replica(sm, broker, "a", kind), replica(sm, broker, "b", kind)
    reps = {"a": a, "b": b}
    resends: queue.Queue[str] = queue.Queue()
    pub = MqttLink(MqttSettings(host=broker.host, port=broker.port), client_id="nodes")
    pub.start()
    pub.subscribe(f"secroom/v1/{SITE}/+/resend", lambda t, p: resends.put(t.split("/")[3]))
    try:
        rounds(a, b)
        assert a.leases.held and b.leases.held and not a.leases.held & b.leases.held
        assert a.leases.held | b.leases.held == set(NODES)
        for r in reps.values():
            r.link.start()
            r.consumer.start()
        assert pub.wait_subscribed(WAIT)
        for name, r in reps.items():
            assert r.link.wait_subscribed(WAIT), (name, r.link.last_error)
            assert subscribed_to(r) == set(r.leases.held), name
        # the broker sends each replica its own nodes' events and nothing else
        got = settle(pub, reps, dict.fromkeys(reps, 0))
        assert got == {name: len(r.leases.held) + 1 for name, r in reps.items()}
        for name, r in reps.items():
            assert r.consumer.wait_idle(WAIT)
            assert r.consumer.counters["not_leased"] == 0, name  # nothing to drop
            assert r.consumer.counters["received"] == got[name], name

        # a message of a node a replica no longer holds (in flight at a hand-over) is dropped
        # un-acked, not stored
        other = sorted(b.leases.held)[0]
        a.consumer.submit(events(other), b"{}")
        assert a.consumer.counters["not_leased"] == 1

        # a leaves: b takes every node, subscribes them, and asks each it gained to re-send
        moved = set(a.leases.held)
        a.consumer.stop()
        a.leases.stop()
        while not resends.empty():
            resends.get_nowait()
        b_before = b.received
        rounds(b, times=1)
        assert b.leases.held == set(NODES) and subscribed_to(b) == set(NODES)
        asked: set[str] = set()
        while not moved <= asked:
            node = resends.get(timeout=WAIT)
            asked.add(node)
            # the node re-sends at once: the new holder's subscription is in place already
            pub.publish(events(node), b"{}", qos=1)
        assert asked <= set(NODES)
        until(lambda: b.received >= b_before + len(asked), "the re-sent events at b")
        assert b.received == b_before + len(asked)  # each reached the new holder
        assert b.consumer.wait_idle(WAIT) and b.consumer.counters["not_leased"] == 0

        # a comes back: b hands its share over (unsubscribes), a takes it (subscribes)
        a.link.stop()
        a = reps["a"] = replica(sm, broker, "a", kind)
        a.link.start()
        a.consumer.start()
        rounds(a, b)
        assert a.leases.held == {n for n in NODES if owner(n, ["a", "b"]) == "a"}
        assert subscribed_to(a) == set(a.leases.held)
        assert subscribed_to(b) == set(b.leases.held) == set(NODES) - a.leases.held
        assert a.link.wait_subscribed(WAIT) and b.link.wait_subscribed(WAIT)
        assert b.consumer.wait_idle(WAIT)
        before = {name: r.received for name, r in reps.items()}
        got = settle(pub, reps, before)
        assert got == {name: len(r.leases.held) + 1 for name, r in reps.items()}
        assert set(b.link.subscriptions) >= {node_filter(SITE, n) for n in b.leases.held}
    finally:
        pub.stop()
        for r in reps.values():
            r.stop()
