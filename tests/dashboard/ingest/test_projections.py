from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from dashboard.models import Presence
from dashboard.projections import AccessFilter, door_log, presence_between, present_now
from tests.dashboard.conftest import T0, msg


def stays(session):
    return [
        (p.person_id, p.door, p.entered_at, p.left_at)
        for p in session.scalars(select(Presence).order_by(Presence.person_id, Presence.entered_at))
    ]


def t(minutes):
    return T0 + timedelta(minutes=minutes)


def test_presence_in_and_out(session, core, node):
    node.enrol(session)
    core.process(
        session,
        [msg(node.access("alice", "in", ts=t(1))), msg(node.access("bob", "in", ts=t(2)))],
        T0,
    )
    session.commit()
    assert [(p.person_id, p.entered_at) for p in present_now(session)] == [
        ("alice", t(1)),
        ("bob", t(2)),
    ]
    core.process(session, [msg(node.access("alice", "out", ts=t(5)))], T0)
    session.commit()
    assert [p.person_id for p in present_now(session)] == ["bob"]
    assert stays(session) == [("alice", "d1", t(1), t(5)), ("bob", "d1", t(2), None)]


def test_denied_taps_do_not_move_anyone(session, core, node):
    node.enrol(session)
    core.process(session, [msg(node.access("alice", "in", granted=False, reason="lockdown"))], T0)
    session.commit()
    assert present_now(session) == []


def test_exit_without_entry_is_kept_as_open_start(session, core, node):
    node.enrol(session)
    core.process(session, [msg(node.access("alice", "out", ts=t(3)))], T0)
    session.commit()
    assert stays(session) == [("alice", "d1", None, t(3))]


def test_two_person_grant_moves_both(session, core, node):
    node.enrol(session)
    ev = node.event(
        "door.access",
        {
            "door": "rack",
            "reader": "r",
            "direction": "in",
            "granted": True,
            "person_id": "alice",
            "second_person_id": "bob",
            "card": "AA",
        },
        ts=t(1),
    )
    core.process(session, [msg(ev)], T0)
    session.commit()
    assert {p.person_id for p in present_now(session, door="rack")} == {"alice", "bob"}


def test_late_events_from_a_resend_rebuild_presence(session, core, node):
    node.enrol(session)
    e_in, e_out, e_in2 = (
        node.access("alice", "in", ts=t(1)),
        node.access("alice", "out", ts=t(5)),
        node.access("alice", "in", ts=t(9)),
    )
    core.process(session, [msg(e_in), msg(e_in2)], T0)  # the exit is lost for now
    session.commit()
    assert stays(session) == [("alice", "d1", t(1), None)]
    core.process(session, [msg(e_out)], T0)  # resent
    session.commit()
    assert stays(session) == [("alice", "d1", t(1), t(5)), ("alice", "d1", t(9), None)]


def test_door_log_filters(session, core, node):
    node.enrol(session)
    core.process(
        session,
        [
            msg(node.access("alice", "in", ts=t(1))),
            msg(node.access("bob", "in", door="d2", ts=t(2))),
            msg(node.access("x", "in", granted=False, reason="unknown_card", ts=t(3))),
            msg(node.access("alice", "out", ts=t(4))),
        ],
        T0,
    )
    session.commit()
    assert [r.seq for r in door_log(session, AccessFilter())] == [4, 3, 2, 1]
    assert [r.seq for r in door_log(session, AccessFilter(person_id="alice"))] == [4, 1]
    assert [r.seq for r in door_log(session, AccessFilter(door="d2"))] == [2]
    assert [r.seq for r in door_log(session, AccessFilter(granted=False))] == [3]
    assert [r.seq for r in door_log(session, AccessFilter(since=t(2), until=t(4)))] == [3, 2]
    page = door_log(session, AccessFilter(), limit=2)
    assert [r.seq for r in door_log(session, AccessFilter(), before_id=page[-1].id)] == [2, 1]
    assert [p.person_id for p in presence_between(session, t(3), t(10))] == ["alice", "bob"]
    assert [p.person_id for p in presence_between(session, t(5), t(10))] == ["bob"]


def test_nodes_overview_shows_policy_lag(session, core, node):
    from dashboard.models import PolicyVersion
    from dashboard.projections import nodes_overview

    node.enrol(session)
    session.add(PolicyVersion(version=3, site="site1", issued_at=T0, sha256="0" * 64, blob=b"x"))
    core.process(session, [msg(node.applied(2))], T0)
    session.commit()
    [row] = nodes_overview(session)
    assert (row["policy_version"], row["policy_latest"], row["policy_current"]) == (2, 3, False)
    core.process(session, [msg(node.applied(3))], T0)
    session.commit()
    assert nodes_overview(session)[0]["policy_current"] is True
    assert nodes_overview(session)[0]["acked_seq"] == 2
