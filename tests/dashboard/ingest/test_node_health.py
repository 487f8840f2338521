"""What a node can only say in its state message: journal failures, lost broker links, clock."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from controller.envelope import canonical_json, format_ts
from dashboard.ingest.core import IngestCore
from dashboard.models import Anomaly, Node
from tests.dashboard.conftest import SITE, T0


def state(node, *, boot="b1", ts=T0, journal=0, unrecorded=0, disconnects=0, readers=None):
    body = {
        "state": "online",
        "public_key": node.public,
        "boot": boot,
        "ts": format_ts(ts),
        "health": {
            "counters": {"journal_failures": journal, "denied_unrecorded": unrecorded},
            "mqtt": {"connects": disconnects + 1, "disconnects": disconnects},
            "readers": readers or {"r-in": True},
        },
    }
    return (f"secroom/v1/{SITE}/{node.name}/state", canonical_json(body))


def kinds(session) -> dict[str, int]:
    return {a.kind: a.count for a in session.scalars(select(Anomaly))}


def feed(core, session, msg, now):
    core.process(session, [msg], now)
    session.commit()


def test_journal_failures_and_broker_losses_become_anomalies(session, core: IngestCore, node):
    node.enrol(session)
    feed(core, session, state(node), T0)
    assert kinds(session) == {}
    feed(core, session, state(node, journal=3, unrecorded=2), T0 + timedelta(seconds=15))
    found = session.scalars(select(Anomaly).where(Anomaly.kind == "journal_failure")).one()
    assert found.severity == "critical" and found.node == "gw1"
    assert found.detail == {"journal_failures": 3, "denied_unrecorded": 2}
    # the same counters again: nothing new happened
    feed(core, session, state(node, journal=3, unrecorded=2), T0 + timedelta(seconds=30))
    assert kinds(session) == {"journal_failure": 1}
    feed(core, session, state(node, journal=3, disconnects=1), T0 + timedelta(seconds=45))
    assert kinds(session) == {"journal_failure": 1, "broker_link": 1}
    # a new boot restarts the counters: one failure after it is new
    feed(core, session, state(node, boot="b2", journal=1), T0 + timedelta(seconds=60))
    assert kinds(session)["journal_failure"] == 2


def test_clock_skew_is_raised_once_a_newer_message_confirms_it(session, core, node):
    node.enrol(session)
    ahead = timedelta(seconds=900)
    # a retained message replayed at (re)connect, seen twice: one observation only
    feed(core, session, state(node, ts=T0 + ahead), T0)
    feed(core, session, state(node, ts=T0 + ahead), T0 + timedelta(seconds=1))
    assert "clock_skew" not in kinds(session)
    assert session.get(Node, "gw1").clock_offset_s == 899.0
    feed(
        core,
        session,
        state(node, ts=T0 + ahead + timedelta(seconds=15)),
        T0 + timedelta(seconds=15),
    )
    skew = session.scalars(select(Anomaly).where(Anomaly.kind == "clock_skew")).one()
    assert skew.detail["offset_s"] == 900.0
    assert session.get(Node, "gw1").clock_offset_s == 900.0


def test_small_offsets_raise_nothing(session, core, node):
    node.enrol(session)
    for i in range(3):
        t = T0 + timedelta(seconds=15 * i)
        feed(core, session, state(node, ts=t + timedelta(seconds=5)), t)
    assert kinds(session) == {}
    assert session.get(Node, "gw1").clock_offset_s == 5.0
