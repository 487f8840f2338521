"""The media ledger as the report and the correlation read it (dashboard.models.media, kept by
the media service): check-outs, returns, wipes and disposals of a period, and the loans
(check-out -> return) for the overdue rule."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.correlation.types import LoanIn
from dashboard.models.media import MediumRecord
from dashboard.reports.data import MEDIA_ACTIONS, MediaRecord


def media_records(session: Session, since: datetime, until: datetime) -> list[MediaRecord]:
    rows = session.scalars(select(MediumRecord).where(
        MediumRecord.at >= since, MediumRecord.at < until,
        MediumRecord.action.in_(MEDIA_ACTIONS)).order_by(MediumRecord.at, MediumRecord.id))
    return [MediaRecord(at=r.at, control_number=r.control_number, action=r.action,
                        actor=r.actor, detail=r.holder or r.method or "") for r in rows]


def loans(session: Session) -> list[LoanIn]:
    """Every check-out with its due time and, once returned (or otherwise ended), when."""
    out: list[LoanIn] = []
    open_: dict[str, MediumRecord] = {}
    for r in session.scalars(select(MediumRecord).order_by(MediumRecord.control_number,
                                                           MediumRecord.at, MediumRecord.id)):
        if r.action == "check_out" and r.due_back is not None:
            open_[r.control_number] = r
        elif r.control_number in open_ and r.action in ("return", "found", "mark_lost"):
            c = open_.pop(r.control_number)
            assert c.due_back is not None
            ended = r.at if r.action != "mark_lost" else None  # a lost medium stays overdue
            out.append(LoanIn(c.control_number, c.holder or "?", c.due_back, ended))
    out += [LoanIn(c.control_number, c.holder or "?", c.due_back, None)  # type: ignore[arg-type]
            for c in open_.values()]
    return out
