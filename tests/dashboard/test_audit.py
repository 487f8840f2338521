from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from dashboard.anomalies import AnomalyError, acknowledge, raise_anomaly, resolve
from dashboard.audit import append_audit, verify_audit
from dashboard.models import Anomaly, AuditRecord
from tests.dashboard.conftest import T0


@pytest.fixture
def chain(session):
    for i in range(5):
        append_audit(
            session,
            actor="admin",
            action="thing.update",
            target_type="thing",
            target_id=str(i),
            before={"v": i},
            after={"v": i + 1},
            now=T0 + timedelta(seconds=i),
        )
    session.commit()
    return session


def test_intact_chain_verifies(chain):
    report = verify_audit(chain)
    assert report.ok and report.records == 5 and report.problems == []
    assert report.head == chain.scalar(select(AuditRecord.hash).where(AuditRecord.seq == 5))


def test_each_record_links_to_the_previous(chain):
    recs = chain.scalars(select(AuditRecord).order_by(AuditRecord.seq)).all()
    assert [r.prev for r in recs[1:]] == [r.hash for r in recs[:-1]]


def test_edited_record_detected(chain):
    chain.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(after={"v": 99}))
    chain.commit()
    report = verify_audit(chain)
    assert not report.ok and report.first_bad_seq == 3
    assert "record 3 was altered" in report.problems[0]


def test_edited_actor_detected(chain):
    chain.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor="someone"))
    chain.commit()
    assert verify_audit(chain).first_bad_seq == 2


def test_removed_record_detected(chain):
    chain.execute(delete(AuditRecord).where(AuditRecord.seq == 4))
    chain.commit()
    report = verify_audit(chain)
    assert not report.ok and report.first_bad_seq == 5
    assert any("missing" in p for p in report.problems)


def test_rehashed_record_still_breaks_the_link(chain):
    """An attacker who recomputes one record's hash still breaks the next record's prev link."""
    from dashboard.audit import record_hash

    rec = chain.get(AuditRecord, 2)
    rec.after = {"v": 42}
    rec.hash = record_hash(
        seq=rec.seq,
        at=rec.at,
        actor=rec.actor,
        action=rec.action,
        target_type=rec.target_type,
        target_id=rec.target_id,
        before=rec.before,
        after=rec.after,
        prev=rec.prev,
    )
    chain.commit()
    report = verify_audit(chain)
    assert not report.ok and report.first_bad_seq == 3


def test_truncated_tail_is_visible_through_the_head(chain):
    head = verify_audit(chain).head
    chain.execute(delete(AuditRecord).where(AuditRecord.seq == 5))
    chain.commit()
    report = verify_audit(chain)
    assert report.ok and report.head != head  # the head an auditor noted no longer matches


def test_anomaly_dedupe_and_acknowledge(session):
    a, created = raise_anomaly(session, "gap", dedupe_key="gw1:3", now=T0, subject="gap")
    b, created2 = raise_anomaly(session, "gap", dedupe_key="gw1:3", now=T0 + timedelta(1), count=4)
    assert created and not created2 and a.id == b.id and b.count == 5
    with pytest.raises(AnomalyError, match="reason"):
        acknowledge(session, "sec", a.id, "  ", now=T0)
    acknowledge(session, "sec", a.id, "node was rebooted", now=T0)
    assert (a.state, a.acknowledged_by) == ("acknowledged", "sec")
    c, created3 = raise_anomaly(session, "gap", dedupe_key="gw1:3", now=T0)
    assert created3 and c.id != a.id
    resolve(session, "sec", a.id, "filled by resend", now=T0)
    with pytest.raises(AnomalyError, match="resolved"):
        acknowledge(session, "sec", a.id, "again", now=T0)
    session.commit()
    assert [r.action for r in session.scalars(select(AuditRecord).order_by(AuditRecord.seq))] == [
        "anomaly.acknowledge",
        "anomaly.resolve",
    ]
    assert session.get(Anomaly, a.id).state == "resolved"
    assert verify_audit(session).ok
