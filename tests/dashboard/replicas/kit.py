"""Nodes for replica tests: real node runtimes (journal, publisher, signed acks and resend
requests) talking to the broker, enrolled and approved in the replicas' database; and the
checks every replica test ends with."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from controller.events import DoorRex
from controller.keys import generate, public_b64
from controller.mqtt import MqttSettings
from controller.runtime import NodeRuntime, RuntimeSettings
from dashboard.models import Anomaly, Node, StoredEvent
from dashboard.models.policy import PolicyVersion
from dashboard.models.replicas import IngestLease, LeaderTerm

FALSE_ANOMALIES = ("gap", "fork", "chain", "bad_signature", "unknown_node", "unapproved_node",
                   "kind_not_allowed", "receipt_refused")


def engine_of(database_url: str) -> Engine:
    return create_engine(database_url, pool_size=2)


def start_nodes(tmp: Path, sm: sessionmaker[Session], broker: Any, site: str,
                trusted: Path, names: list[str]) -> dict[str, NodeRuntime]:
    """Door gateway nodes, enrolled and approved, started (each emits node.started)."""
    nodes: dict[str, NodeRuntime] = {}
    with sm.begin() as s:
        for name in names:
            key = generate(tmp / name / "node.key")
            s.add(Node(name=name, site=site, roles="door_gateway", public_key=public_b64(
                key.public_key()), key_status="approved", first_seen_at=datetime.now(UTC),
                contiguous_seq=0, max_seq=0, events_stored=0, state="unknown", health={}))
    for name in names:
        rt = NodeRuntime(RuntimeSettings(
            node=name, site=site, journal=tmp / name / "journal.sqlite3",
            key_file=tmp / name / "node.key", trusted_keys=[trusted],
            mqtt=MqttSettings(host=broker.host, port=broker.port)))
        rt.start()
        nodes[name] = rt
    return nodes


def emit(node: NodeRuntime, n: int) -> int:
    for _ in range(n):
        node.emit("door.rex", DoorRex(door="d1"))
    return node.journal.head()[0]


def stored_once_in_order(sm: sessionmaker[Session], nodes: dict[str, NodeRuntime]) -> None:
    """Every event each node's journal holds is stored exactly once, its chain intact, and the
    node's contiguous mark is its head (nothing missing in between)."""
    with sm() as s:
        for name, rt in nodes.items():
            head = rt.journal.head()[0]
            seqs = list(s.scalars(select(StoredEvent.seq).where(StoredEvent.node == name)
                                  .order_by(StoredEvent.seq)))
            assert seqs == list(range(1, head + 1)), (name, head, len(seqs))
            broken = s.scalar(select(func.count()).where(StoredEvent.node == name,
                                                         StoredEvent.chain_ok.is_(False)))
            assert broken == 0, name
            row = s.get(Node, name)
            assert row is not None
            assert (row.contiguous_seq, row.max_seq, row.gap_since) == (head, head, None)


def false_anomalies(sm: sessionmaker[Session]) -> list[tuple[str, str]]:
    with sm() as s:
        return [(a.kind, a.subject) for a in s.scalars(
            select(Anomaly).where(Anomaly.kind.in_(FALSE_ANOMALIES)))]


def one_signer_at_a_time(sm: sessionmaker[Session], killed: dict[str, datetime]) -> list[str]:
    """Leader terms never overlap (a term ends when its holder let go, or when it was killed),
    and every policy version was signed by the holder of the term it was issued in. Returns
    the holders in order."""
    with sm() as s:
        terms = list(s.scalars(select(LeaderTerm).order_by(LeaderTerm.started_at)))
        versions = list(s.scalars(select(PolicyVersion).order_by(PolicyVersion.version)))
        now = s.scalar(text("SELECT clock_timestamp()"))
    assert terms, "no replica ever led"
    ends = []
    for term in terms:
        end = term.ended_at or killed.get(term.holder)
        if term is not terms[-1]:
            assert end is not None, f"term of {term.holder} neither ended nor was killed"
        ends.append(end or now)
    for term, next_term, end in zip(terms, terms[1:], ends, strict=False):
        assert next_term.started_at >= end, (term.holder, next_term.holder)
    assert versions, "no policy was signed"
    for v in versions:
        holders = [t.holder for t, end in zip(terms, ends, strict=True)
                   if t.started_at <= v.issued_at <= end]
        assert holders == [v.signed_by], (v.version, v.signed_by, holders)
    return [t.holder for t in terms]


def holders(sm: sessionmaker[Session]) -> dict[str, str]:
    """Which replica holds each node's ingest lease."""
    with sm() as s:
        return {lease.node: lease.holder for lease in s.scalars(select(IngestLease))}


def wait_for(predicate: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll what other processes write (the database, the nodes' journals): nothing to
    subscribe to."""
    pause = threading.Event()
    deadline = datetime.now(UTC).timestamp() + timeout
    while not predicate():
        if datetime.now(UTC).timestamp() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        pause.wait(0.1)
