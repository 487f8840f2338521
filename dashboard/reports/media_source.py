"""The media ledger as the report reads it (dashboard.models.media, kept by the media
service): check-outs, returns, wipes and disposals of a period. The loans the overdue rule
reads are dashboard.correlation.sources.loans."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models.media import MediumRecord
from dashboard.reports.data import MEDIA_ACTIONS, MediaRecord


def media_records(session: Session, since: datetime, until: datetime) -> list[MediaRecord]:
    rows = session.scalars(select(MediumRecord).where(
        MediumRecord.at >= since, MediumRecord.at < until,
        MediumRecord.action.in_(MEDIA_ACTIONS)).order_by(MediumRecord.at, MediumRecord.id))
    return [MediaRecord(at=r.at, control_number=r.control_number, action=r.action,
                        actor=r.actor, detail=r.holder or r.method or "") for r in rows]
