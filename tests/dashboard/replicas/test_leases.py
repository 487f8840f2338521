"""Ingest leases, the leader lock and the shared bus on a real PostgreSQL, driven in one
process (rounds called by the test, so no timing is assumed); the rendezvous split and the
NOTIFY packing as pure logic."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from dashboard.db import Base, make_sessionmaker
from dashboard.models import Node
from dashboard.models.replicas import LeaderTerm
from dashboard.replicas.leader import Leader
from dashboard.replicas.leases import IngestLeases, LeaseChange, node_of, owner
from dashboard.replicas.pgbus import MAX_PAYLOAD, SharedBus
from dashboard.settings import DashboardSettings

SITE = "site1"
NODES = [f"gw{i}" for i in range(12)]


@pytest.fixture
def pg(pg_engine: Engine) -> Iterator[Engine]:
    Base.metadata.create_all(pg_engine)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with pg_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    yield pg_engine


@pytest.fixture
def sm(pg: Engine) -> sessionmaker[Session]:
    sm = make_sessionmaker(pg)
    with sm.begin() as s:
        for name in NODES:
            s.add(Node(name=name, site=SITE, roles="door_gateway", public_key="k",
                       key_status="approved", first_seen_at=datetime.now(UTC),
                       contiguous_seq=0, max_seq=0, events_stored=0, state="unknown",
                       health={}))
    return sm


def lapse(sm: sessionmaker[Session], replica: str) -> None:
    """As if ``replica`` stopped renewing ``lease_s`` ago (it died): its heartbeat and its
    leases are in the past."""
    with sm.begin() as s:
        s.execute(text("UPDATE replicas SET seen_at = seen_at - interval '1 hour' "
                       "WHERE name = :r"), {"r": replica})
        s.execute(text("UPDATE ingest_leases SET expires_at = clock_timestamp() "
                       "- interval '1 hour' WHERE holder = :r"), {"r": replica})


def test_owner_is_stable_balanced_and_moves_only_the_leavers_share() -> None:
    nodes = [f"n{i}" for i in range(600)]
    three = {n: owner(n, ["a", "b", "c"]) for n in nodes}
    counts = {r: list(three.values()).count(r) for r in "abc"}
    assert all(120 < c < 280 for c in counts.values()), counts
    two = {n: owner(n, ["a", "b"]) for n in nodes}
    assert all(two[n] == three[n] for n in nodes if three[n] != "c")  # only c's nodes move
    assert owner("n1", []) is None
    assert node_of("secroom/v1/site1/gw1/events/door.rex") == "gw1"
    assert node_of("secroom/v1/site1/gw1/state") == "gw1"
    assert node_of("other/x") is None


def test_two_replicas_split_the_nodes_and_a_dead_ones_move(sm: sessionmaker[Session]) -> None:
    a = IngestLeases(sm, replica="a", sites=[SITE])
    b = IngestLeases(sm, replica="b", sites=[SITE])
    gained_b: list[set[str]] = []

    def heard(change: LeaseChange) -> None:
        if change.gained:
            gained_b.append(set(change.gained))

    b.add_listener(heard)
    a.renew()
    assert a.held == set(NODES)  # alone: every node
    b.renew()  # b joins: a still holds them, b waits for a's hand-over
    assert b.held == set()
    a.renew()  # a lets go of b's share
    b.renew()  # b claims it
    a.renew()
    assert a.held and b.held and a.held | b.held == set(NODES) and not a.held & b.held
    assert b.held == {n for n in NODES if owner(n, ["a", "b"]) == "b"}
    assert gained_b == [set(b.held)]
    with sm() as s:  # the fence, in a storing transaction, says the same
        assert a.fence(s, NODES) == a.held
        assert b.fence(s, NODES) == b.held
    lapse(sm, "a")  # a dies
    with sm() as s:
        assert a.fence(s, NODES) == set(), "a lapsed lease stores nothing"
    b.renew()
    assert b.held == set(NODES)
    assert gained_b[-1] == set(NODES) - set(gained_b[0])


def test_leases_cover_every_sites_nodes(sm: sessionmaker[Session]) -> None:
    """A central dashboard's other sites: their nodes are leased like the home site's, and a
    listener learns each held node's site (each site's consumer subscribes its own)."""
    other = [f"os{i}" for i in range(6)]
    with sm.begin() as s:
        for name in other:
            s.add(Node(name=name, site="osaka", roles="door_gateway", public_key="k",
                       key_status="approved", first_seen_at=datetime.now(UTC),
                       contiguous_seq=0, max_seq=0, events_stored=0, state="unknown",
                       health={}))
        s.add(Node(name="elsewhere", site="nagoya", roles="door_gateway", public_key="k",
                   key_status="approved", first_seen_at=datetime.now(UTC), contiguous_seq=0,
                   max_seq=0, events_stored=0, state="unknown", health={}))
    a = IngestLeases(sm, replica="a", sites=[SITE, "osaka"])
    b = IngestLeases(sm, replica="b", sites=[SITE, "osaka"])
    heard: list[LeaseChange] = []
    a.add_listener(heard.append)
    a.renew()
    assert a.held == set(NODES) | set(other)  # not nagoya's: no replica ingests it
    assert heard[-1].held_at("osaka") == set(other) and heard[-1].held_at(SITE) == set(NODES)
    b.renew()
    a.renew()
    b.renew()
    a.renew()
    assert a.held | b.held == set(NODES) | set(other) and not a.held & b.held
    assert heard[-1].held == a.held and heard[-1].others == b.held
    assert {n for n in other if owner(n, ["a", "b"]) == "b"} == b.held & set(other)
    late: list[LeaseChange] = []
    a.add_listener(late.append)  # told at once what the last round found
    assert [c.held for c in late] == [a.held]


def test_a_takeover_waits_for_a_store_in_flight(sm: sessionmaker[Session]) -> None:
    a = IngestLeases(sm, replica="a", sites=[SITE], lease_s=1.0, renew_s=0.5)
    b = IngestLeases(sm, replica="b", sites=[SITE], lease_s=1.0, renew_s=0.5)
    a.renew()
    store = sm()
    t = threading.Thread(target=b.renew)
    deadline = time.monotonic() + 60
    try:
        assert a.fence(store, ["gw1"]) == {"gw1"}  # a's storing transaction is open
        with sm() as s:  # a stops renewing: its lease and heartbeat lapse (the database's clock)
            while not s.scalar(text("SELECT bool_and(expires_at < clock_timestamp()) "
                                    "FROM ingest_leases")):
                s.rollback()
                assert time.monotonic() < deadline, "the leases never lapsed"
                threading.Event().wait(0.05)
        t.start()
        with sm() as s:  # b's claim of gw1 waits on the row a's store holds FOR SHARE
            while not s.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type "
                                    "= 'Lock' AND datname = current_database() "
                                    "AND query LIKE 'INSERT INTO ingest_leases%'")):
                s.rollback()
                assert t.is_alive(), "b claimed a node whose store was still in flight"
                assert time.monotonic() < deadline, "b's claim never waited"
                threading.Event().wait(0.05)
        store.commit()  # the store in flight commits under a's lease; then b takes over
    finally:
        store.close()  # on failure too: an open transaction would block the next TRUNCATE
    t.join(30)
    assert not t.is_alive()
    assert b.held == set(NODES)


def test_leaving_hands_the_nodes_over_at_once(sm: sessionmaker[Session]) -> None:
    a = IngestLeases(sm, replica="a", sites=[SITE])
    b = IngestLeases(sm, replica="b", sites=[SITE])
    a.start()
    b.renew()
    a.stop()  # a clean stop: leases released and the heartbeat gone, no lease_s wait
    b.renew()
    assert b.held == set(NODES)
    assert not a.holds("gw1")


def test_unenrolled_node_goes_to_one_replica(sm: sessionmaker[Session]) -> None:
    a = IngestLeases(sm, replica="a", sites=[SITE])
    b = IngestLeases(sm, replica="b", sites=[SITE])
    for r in (a, b, a, b):
        r.renew()
    stranger = "intruder-1"
    assert [a.holds(stranger), b.holds(stranger)].count(True) == 1


class _Part:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def start(self) -> None:
        self.log.append(f"start {self.name}")

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")


def test_one_leader_and_takeover_when_its_connection_ends(pg: Engine,
                                                          sm: sessionmaker[Session]) -> None:
    log: list[str] = []
    first = Leader(pg, lambda: [_Part(log, "signer-1")], replica="r1", site=SITE)
    second = Leader(pg, lambda: [_Part(log, "signer-2")], replica="r2", site=SITE)
    first._step()
    second._step()
    assert first.leading.is_set() and not second.leading.is_set()
    assert log == ["start signer-1"]
    assert first._conn is not None
    with pg.begin() as conn:  # r1's session ends (as when its process is killed)
        pid = first._conn.scalar(text("SELECT pg_backend_pid()"))
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    second._step()  # the lock is free: r2 takes it
    assert second.leading.is_set()
    first._step()  # r1 finds its connection gone: stops its parts, does not lead
    assert not first.leading.is_set()
    assert log == ["start signer-1", "start signer-2", "stop signer-1"]
    first._step()  # and cannot take it back while r2 holds it
    assert not first.leading.is_set()
    second.stop()
    first._step()
    assert first.leading.is_set()
    first.stop()
    with sm() as s:
        terms = [(t.holder, t.ended_at is not None) for t in
                 s.scalars(select(LeaderTerm).order_by(LeaderTerm.id))]
    assert terms == [("r1", False), ("r2", True), ("r1", True)]


def test_shared_bus_carries_messages_between_replicas(pg: Engine) -> None:
    url = pg.url.render_as_string(hide_password=False)
    one, two = SharedBus(url, replica="r1"), SharedBus(url, replica="r2")
    one.start()
    two.start()
    try:
        got: list[Any] = []
        arrived = threading.Event()

        def seen(msg: Any) -> None:
            got.append(msg)
            if len(got) >= 3:
                arrived.set()

        two.listen(("event", "anomaly"), seen)
        own: list[Any] = []
        one.listen(("event",), own.append)
        big = {"node": "gw1", "seq": 2, "kind": "door.rex", "data": {"x": "あ" * 5000}}
        one.publish("event", {"node": "gw1", "seq": 1, "kind": "door.rex", "data": {}})
        one.publish("event", big)
        one.publish("anomaly", {"id": 7, "kind": "gap"})
        assert arrived.wait(30), (one.last_error, two.last_error)
        assert [(m.topic, m.data.get("seq") or m.data.get("id")) for m in got] == [
            ("event", 1), ("event", 2), ("anomaly", 7)]
        assert "data" not in got[1].data  # too big for a notification: the row without it
        assert len(own) == 2  # delivered locally once, not echoed back
    finally:
        one.stop()
        two.stop()


def test_notifications_stay_under_postgres_limit() -> None:
    bus = SharedBus("postgresql+psycopg://u@h/db", replica="r1")
    items = [("event", {"node": "gw1", "seq": i, "data": {"door": "d" * 50}})
             for i in range(500)]
    payloads = bus._payloads(items)  # type: ignore[arg-type]
    assert len(payloads) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD for p in payloads)
    seqs = [m[1]["seq"] for p in payloads for m in json.loads(p)["m"]]
    assert seqs == list(range(500))


def test_replica_needs_postgres(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        DashboardSettings(data_dir=tmp_path, replica={"name": "r1"})
    with pytest.raises(ValueError, match="half"):
        DashboardSettings(data_dir=tmp_path, database_url="postgresql+psycopg://u@h/db",
                          replica={"name": "r1", "lease_s": 2, "renew_s": 1.5})
    ok = DashboardSettings(data_dir=tmp_path, database_url="postgresql+psycopg://u@h/db",
                           replica={"name": "r1"})
    assert ok.replica is not None and ok.replica.lease_s == 4.0


def test_the_example_replica_config_loads() -> None:
    from pathlib import Path

    from dashboard.settings import load_settings

    path = Path(__file__).resolve().parents[3] / "hardware" / "dashboard-replica.example.toml"
    settings = load_settings(path)
    assert settings.replica is not None and settings.replica.name == "r1"
    assert settings.database_url.startswith("postgresql")


def test_runtime_composition(pg: Engine, tmp_path: Any) -> None:
    """A replica runs ingest under leases and its scheduled work under the leader (with or
    without MQTT); the single box keeps its parts as before."""
    from dashboard.ingest.consumer import IngestConsumer
    from dashboard.runtime import build_runtime

    url = pg.url.render_as_string(hide_password=False)
    web_only = build_runtime(DashboardSettings(data_dir=tmp_path / "a", database_url=url,
                                               replica={"name": "r1"}))
    assert [type(p).__name__ for p in web_only.parts] == ["SharedBus", "Leader"]
    full = build_runtime(DashboardSettings(data_dir=tmp_path / "b", database_url=url,
                                           replica={"name": "r1"}, mqtt={"port": 1}))
    assert [type(p).__name__ for p in full.parts] == [
        "SharedBus", "IngestLeases", "LinkProcess", "IngestConsumer", "Leader"]
    consumer = full.parts[3]
    assert isinstance(consumer, IngestConsumer) and consumer.leases is full.parts[1]
    assert full.parts[2].client_id.endswith("-r1")  # replicas must not share a client id
    leader = full.parts[4]
    assert {type(p).__name__ for p in leader.make_parts()} >= {
        "PolicySigner", "PresencePublisher", "EnrolSender", "BackupWatch", "LoopPart"}
    single = build_runtime(DashboardSettings(data_dir=tmp_path / "c", mqtt={"port": 1}))
    assert [type(p).__name__ for p in single.parts] == [
        "LoopPart", "LinkProcess", "IngestConsumer", "PolicySigner", "PresencePublisher",
        "EnrolSender", "BackupWatch",
        "LoopPart", "LoopPart"]  # the correlation, the camera stills' retention
    for rt in (web_only, full, single):
        for p in rt.parts:
            if isinstance(p, IngestConsumer):
                p.audit.close()
