from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.envelope import canonical_json, seal
from controller.events import PolicyRejected
from dashboard.ingest.core import IngestCore, ResendRequest
from dashboard.models import Anomaly, DoorAccess, Node, StoredEvent
from tests.dashboard.conftest import SITE, T0, FakeNode, msg


def stored_seqs(session: Session, node: str = "gw1") -> list[int]:
    return list(
        session.scalars(
            select(StoredEvent.seq).where(StoredEvent.node == node).order_by(StoredEvent.seq)
        )
    )


def anomalies(session: Session, kind: str) -> list[Anomaly]:
    return list(session.scalars(select(Anomaly).where(Anomaly.kind == kind)))


def run(core: IngestCore, session: Session, items, now=T0):
    result = core.process(session, items, now)
    session.commit()
    return result


def test_stores_in_order_and_acks_highest_contiguous(session, core, node):
    node.enrol(session)
    evs = node.events(5)
    result = run(core, session, [msg(e) for e in evs])
    assert result.counts["stored"] == 5
    assert {n: a.seq for n, a in result.acks.items()} == {"gw1": 5}
    assert result.resends == []
    assert stored_seqs(session) == [1, 2, 3, 4, 5]
    n = session.get(Node, "gw1")
    assert (n.contiguous_seq, n.max_seq, n.contiguous_hash) == (5, 5, evs[-1].hash)
    assert all(session.scalars(select(StoredEvent.chain_ok)))


def test_duplicate_dropped_silently_and_counted(session, core, node):
    node.enrol(session)
    evs = node.events(3)
    run(core, session, [msg(e) for e in evs])
    result = run(core, session, [msg(evs[1]), msg(evs[1])])
    assert result.counts["duplicate"] == 2
    assert result.acks == {}
    assert stored_seqs(session) == [1, 2, 3]
    assert core.counters.snapshot()["duplicate"] == 2
    assert session.scalar(select(func.count()).select_from(Anomaly)) == 0


def test_duplicate_within_one_batch(session, core, node):
    node.enrol(session)
    ev = node.event()
    result = run(core, session, [msg(ev), msg(ev)])
    assert result.counts["stored"] == 1 and result.counts["duplicate"] == 1
    assert stored_seqs(session) == [1]


def test_fork_same_seq_other_hash_is_rejected_with_anomaly(session, core, node):
    node.enrol(session)
    evs = node.events(2)
    run(core, session, [msg(e) for e in evs])
    forked = seal(
        node.key,
        node="gw1",
        site=SITE,
        seq=2,
        ts=T0,
        boot="other",
        clock="synced",
        kind="node.started",
        data={},
        prev=evs[0].hash,
    )
    result = run(core, session, [msg(forked)])
    assert result.counts["fork"] == 1
    assert session.scalar(select(StoredEvent.hash).where(StoredEvent.seq == 2)) == evs[1].hash
    [a] = anomalies(session, "fork")
    assert a.node == "gw1" and a.severity == "critical" and a.detail["seq"] == 2


def test_gap_requests_resend_then_fill_advances_ack(session, core, node):
    node.enrol(session)
    evs = node.events(6)
    run(core, session, [msg(e) for e in evs[:2]])
    result = run(core, session, [msg(evs[4]), msg(evs[5])])
    assert result.acks == {}
    assert result.resends == [ResendRequest("gw1", 3, 4)]
    assert session.get(Node, "gw1").gap_since == T0
    # the node re-sends the range
    result = run(core, session, [msg(evs[2]), msg(evs[3])], now=T0 + timedelta(seconds=2))
    assert {n: a.seq for n, a in result.acks.items()} == {"gw1": 6}
    assert result.resends == []
    n = session.get(Node, "gw1")
    assert n.gap_since is None and n.contiguous_hash == evs[5].hash
    assert all(session.scalars(select(StoredEvent.chain_ok)))


def test_gap_not_filled_in_time_raises_anomaly(session, core, node):
    node.enrol(session)
    evs = node.events(4)
    run(core, session, [msg(evs[0]), msg(evs[3])])
    early = core.check_gaps(session, T0 + timedelta(seconds=10), gap_timeout_s=30)
    session.commit()
    assert anomalies(session, "gap") == []
    assert early.resends == [ResendRequest("gw1", 2, 3)]
    late = core.check_gaps(session, T0 + timedelta(seconds=31), gap_timeout_s=30)
    session.commit()
    [a] = anomalies(session, "gap")
    assert a.detail["from"] == 2 and a.detail["to"] == 3
    assert late.resends == [ResendRequest("gw1", 2, 3)]


def test_resend_requests_are_rate_limited(session, node):
    core = IngestCore(site=SITE, resend_interval_s=5)
    node.enrol(session)
    evs = node.events(4)
    run(core, session, [msg(evs[0]), msg(evs[2])])
    assert run(core, session, [msg(evs[3])], now=T0 + timedelta(seconds=1)).resends == []
    r = core.check_gaps(session, T0 + timedelta(seconds=6), gap_timeout_s=60)
    assert r.resends == [ResendRequest("gw1", 2, 2)]


def test_chain_break_is_stored_flagged_and_raised(session, core, node):
    node.enrol(session)
    evs = node.events(2)
    node.prev = "f" * 64  # the node's chain breaks (e.g. a journal restored from an old copy)
    bad = node.event()
    run(core, session, [msg(e) for e in [*evs, bad]])
    flags = dict(session.execute(select(StoredEvent.seq, StoredEvent.chain_ok)).all())
    assert flags == {1: True, 2: True, 3: False}
    [a] = anomalies(session, "chain")
    assert a.detail["seq"] == 3


def test_chain_checked_against_later_event_on_fill(session, core, node):
    node.enrol(session)
    evs = node.events(3)
    imposter = seal(
        node.key,
        node="gw1",
        site=SITE,
        seq=2,
        ts=T0,
        boot="x",
        clock="synced",
        kind="node.started",
        data={"other": 1},
        prev=evs[0].hash,
    )
    run(core, session, [msg(evs[0]), msg(evs[2])])
    run(core, session, [msg(imposter)])
    assert anomalies(session, "chain")


def test_bad_signature_rejected_with_anomaly(session, core, node):
    node.enrol(session)
    other = FakeNode(key=None)
    forged = other.event()  # same node name, signed by another key
    result = run(core, session, [msg(forged)])
    assert result.counts["bad_signature"] == 1
    assert stored_seqs(session) == []
    [a] = anomalies(session, "bad_signature")
    assert a.node == "gw1"


def test_unknown_node_rejected_with_one_anomaly(session, core):
    stranger = FakeNode("ghost")
    result = run(core, session, [msg(e) for e in stranger.events(3)])
    assert result.counts["unknown_node"] == 3
    assert session.scalar(select(func.count()).select_from(StoredEvent)) == 0
    [a] = anomalies(session, "unknown_node")
    assert a.count == 3 and a.detail["last_node"] == "ghost"


def test_state_with_key_creates_pending_node_and_events_wait_for_approval(session, core, node):
    state = canonical_json({"state": "online", "public_key": node.public, "boot": "b"})
    result = run(core, session, [(f"secroom/v1/{SITE}/gw1/state", state)])
    assert result.counts["state"] == 1
    n = session.get(Node, "gw1")
    assert (n.key_status, n.public_key, n.state) == ("pending", node.public, "online")
    assert anomalies(session, "node_enrolment")
    result = run(core, session, [msg(node.event())])
    assert result.counts["node_not_approved"] == 1
    n.key_status, n.roles = "approved", "door_gateway"
    session.commit()
    ev2 = node.event()
    result = run(core, session, [msg(ev2)])
    assert result.counts["stored"] == 1
    assert result.resends == [ResendRequest("gw1", 1, 1)]  # asks for what it refused before


def test_state_cannot_replace_an_approved_key(session, core, node):
    node.enrol(session)
    intruder = FakeNode()
    state = canonical_json({"state": "online", "public_key": intruder.public})
    run(core, session, [(f"secroom/v1/{SITE}/gw1/state", state)])
    assert session.get(Node, "gw1").public_key == node.public
    assert anomalies(session, "node_key_mismatch")


def test_offline_state_updates_health(session, core, node):
    node.enrol(session)
    run(
        core,
        session,
        [(f"secroom/v1/{SITE}/gw1/state", b'{"state":"offline"}')],
        now=T0 + timedelta(minutes=1),
    )
    n = session.get(Node, "gw1")
    assert n.state == "offline" and n.state_at == T0 + timedelta(minutes=1)


def test_topic_and_site_checks(session, core, node):
    node.enrol(session)
    ev = node.event()
    result = run(
        core,
        session,
        [
            (f"secroom/v1/{SITE}/gw2/events/node.started", ev.to_bytes()),
            (f"secroom/v1/{SITE}/gw1/events/door.access", ev.to_bytes()),
            ("secroom/v1/othersite/gw1/events/node.started", ev.to_bytes()),
            ("elsewhere/x", ev.to_bytes()),
        ],
    )
    assert result.counts == {"topic_mismatch": 2, "wrong_site": 1, "bad_topic": 1}
    assert stored_seqs(session) == []


def test_health_projection(session, core, node):
    node.enrol(session)
    run(
        core,
        session,
        [
            msg(e)
            for e in [
                node.event("node.clock", {"state": "synced", "offset_s": 0.004}),
                node.applied(7),
            ]
        ],
        now=T0 + timedelta(hours=1),
    )
    n = session.get(Node, "gw1")
    assert n.clock_state == "synced" and n.clock_offset_s == 0.004
    assert n.policy_version == 7 and n.policy_applied_at == node.ts
    assert n.last_seen_at == T0 + timedelta(hours=1)
    rejected = PolicyRejected(reason="bad_signature", version=8, source="mqtt")
    run(core, session, [msg(node.event("policy.rejected", rejected))])
    assert session.get(Node, "gw1").policy_rejected == "bad_signature"
    assert anomalies(session, "policy_rejected")


def test_door_forced_raises_anomaly(session, core, node):
    node.enrol(session)
    run(core, session, [msg(node.event("door.forced", {"door": "d1"}))])
    [a] = anomalies(session, "door_forced")
    assert a.detail["door"] == "d1"


def test_door_access_projection(session, core, node):
    node.enrol(session)
    run(
        core,
        session,
        [msg(node.access("alice")), msg(node.access("bob", granted=False, reason="not_permitted"))],
    )
    rows = session.scalars(select(DoorAccess).order_by(DoorAccess.seq)).all()
    assert [(r.person_id, r.granted, r.reason, r.direction, r.uid) for r in rows] == [
        ("alice", True, None, "in", "01020304"),
        (None, False, "not_permitted", "in", "01020304"),
    ]
    ev = session.scalar(select(StoredEvent).where(StoredEvent.seq == 1))
    assert ev.person_id == "alice" and ev.door == "d1" and ev.data["granted"] is True


def test_bus_messages_describe_stored_events(session, core, node):
    node.enrol(session)
    result = run(core, session, [msg(node.access("alice"))])
    events = [d for t, d in result.messages if t == "event"]
    assert events == [
        {
            "node": "gw1",
            "seq": 1,
            "kind": "door.access",
            "ts": node.ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "person_id": "alice",
            "door": "d1",
            "data": events[0]["data"],
        }
    ]
    assert events[0]["data"]["card"] == "01020304"


def test_chain_mode_verifies_runs_by_their_last_signature(session, node):
    from dashboard.ingest.verify import SignatureVerifier, chain_runs

    core = IngestCore(site=SITE, verifier=SignatureVerifier(mode="chain"))
    node.enrol(session)
    evs = node.events(6)
    key = core.verifier.key(node.public)
    assert [len(r) for r in chain_runs([(key, e) for e in evs])] == [6]
    forged_tail = seal(
        FakeNode().key,
        node="gw1",
        site=SITE,
        seq=7,
        ts=T0,
        boot="x",
        clock="synced",
        kind="node.started",
        data={},
        prev=evs[-1].hash,
    )
    result = run(core, session, [msg(e) for e in evs] + [msg(forged_tail)])
    # the run's tail fails, so each event is checked on its own: the six real ones pass
    assert result.counts["stored"] == 6 and result.counts["bad_signature"] == 1
    assert stored_seqs(session) == [1, 2, 3, 4, 5, 6]


def test_chain_runs_split_by_node_and_gap_in_any_order():
    from dashboard.ingest.verify import SignatureVerifier, chain_runs

    a, b = FakeNode("gw1"), FakeNode("gw2")
    verifier = SignatureVerifier()
    ka, kb = verifier.key(a.public), verifier.key(b.public)
    a_evs = a.events(5)  # seq 1..5
    a.seq += 1  # seq 6 never sent: a gap
    a_evs += a.events(2)  # 7, 8
    b_evs = b.events(3)
    items = [(kb, b_evs[2]), (ka, a_evs[3]), (ka, a_evs[0]), (kb, b_evs[0]), (ka, a_evs[1])]
    items += [(ka, a_evs[6]), (ka, a_evs[2]), (kb, b_evs[1]), (ka, a_evs[4]), (ka, a_evs[5])]
    runs = chain_runs(items)
    got = sorted([(items[r[0]][1].node, [items[i][1].seq for i in r]) for r in runs])
    assert got == [("gw1", [1, 2, 3, 4, 5]), ("gw1", [7, 8]), ("gw2", [1, 2, 3])]
    assert sorted(i for r in runs for i in r) == list(range(len(items)))


def test_chain_mode_rejects_unlinked_forgery(session, node):
    from dashboard.ingest.verify import SignatureVerifier

    core = IngestCore(site=SITE, verifier=SignatureVerifier(mode="chain"))
    node.enrol(session)
    evs = node.events(3)
    forged = seal(
        FakeNode().key,
        node="gw1",
        site=SITE,
        seq=2,
        ts=T0,
        boot="x",
        clock="synced",
        kind="node.started",
        data={"evil": 1},
        prev=evs[0].hash,
    )
    result = run(core, session, [msg(evs[0]), msg(forged), msg(evs[2])])
    assert result.counts["bad_signature"] == 1
    assert stored_seqs(session) == [1, 3]
