"""Overdue media: an anomaly per late check-out, and the loans the correlation engine reads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.anomalies import raise_anomaly
from dashboard.correlation.types import LoanIn
from dashboard.media.convert import to_ledger
from dashboard.models.anomalies import Anomaly
from dashboard.models.media import Medium, MediumRecord
from usb_guard import ledger

KIND = "media_overdue"


def raise_overdue(session: Session, now: datetime) -> list[Anomaly]:
    """Open (or bump) one ``media_overdue`` anomaly per checked-out medium past its due-back
    time. Run periodically; the caller commits. Returns the anomalies touched."""
    rows = session.scalars(select(Medium).where(Medium.state == "checked_out")).all()
    out = []
    for late in ledger.overdue([to_ledger(r) for r in rows], now):
        hours = int(late.overdue_by.total_seconds() // 3600)
        anomaly, _ = raise_anomaly(
            session, KIND, dedupe_key=f"{late.control_number}:{late.due_back.isoformat()}",
            now=now, subject=f"medium {late.control_number} overdue",
            detail={"control_number": late.control_number, "holder": late.holder,
                    "due_back": late.due_back, "overdue_hours": hours},
        )
        out.append(anomaly)
    return out


def loans(session: Session, since: datetime, until: datetime) -> list[LoanIn]:
    """Check-outs due back in [since, until] with when they came back (None if not yet), for
    ``dashboard.correlation`` (its ``media_overdue`` rule)."""
    outs = session.scalars(
        select(MediumRecord)
        .where(MediumRecord.action == "check_out", MediumRecord.due_back >= since,
               MediumRecord.due_back <= until)
        .order_by(MediumRecord.id)
    ).all()
    result = []
    for rec in outs:
        back = session.scalar(
            select(MediumRecord.at)
            .where(MediumRecord.control_number == rec.control_number, MediumRecord.id > rec.id,
                   MediumRecord.action == "return")
            .order_by(MediumRecord.id).limit(1)
        )
        assert rec.holder is not None and rec.due_back is not None
        result.append(LoanIn(rec.control_number, rec.holder, rec.due_back, back))
    return result
