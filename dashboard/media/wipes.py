"""Periodic erasure of numbered media (定期的なデータ消去): a wipe interval per medium or per
media type, the date each medium is due, and the review item raised once a wipe is overdue.

A medium is due ``interval`` days after its last wipe (or its registration, if never wiped);
disposed-of and lost media are not due. The rule is pure (``wipe_overdue``); the correlation's
periodic check (dashboard.correlation.periodic) evaluates it for every medium.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.audit import append_audit
from dashboard.correlation.rules import key, local
from dashboard.correlation.settings import CorrelationSettings
from dashboard.correlation.types import FindingOut
from dashboard.models.media import MediaWipeInterval, Medium
from dashboard.services.base import NotFound, ServiceError

RULE = "media_wipe_overdue"
NOT_DUE_STATES = ("disposed", "lost")
MAX_DAYS = 3650


@dataclass(frozen=True)
class WipeDue:
    control_number: str
    custodian: str
    interval_days: int
    due: datetime


def intervals(session: Session) -> dict[str, int]:
    return {r.media_type: r.interval_days for r in session.scalars(select(MediaWipeInterval))}


def due_of(row: Medium, by_type: dict[str, int]) -> WipeDue | None:
    days = row.wipe_interval_days or by_type.get(row.media_type)
    if not days or row.state in NOT_DUE_STATES:
        return None
    base = row.wiped_at or row.registered_at
    return WipeDue(row.control_number, row.custodian, days, base + timedelta(days=days))


def dues(session: Session) -> list[WipeDue]:
    by_type = intervals(session)
    out = []
    for row in session.scalars(select(Medium).order_by(Medium.control_number)):
        d = due_of(row, by_type)
        if d is not None:
            out.append(d)
    return out


def wipe_overdue(d: WipeDue, now: datetime, s: CorrelationSettings) -> FindingOut | None:
    if now <= d.due:
        return None
    days = (now - d.due).days
    return FindingOut(
        key=key(RULE, d.control_number, d.due.isoformat()), rule=RULE, severity="warning",
        at=d.due, person_id=d.custodian, subject=f"medium {d.control_number} wipe overdue",
        ja=f"媒体 {d.control_number} の定期消去(間隔 {d.interval_days} 日)の期限 "
           f"{local(d.due, s)} を {days} 日過ぎています。",
        en=f"Medium {d.control_number} was due for its periodic wipe (every {d.interval_days} "
           f"days) at {local(d.due, s)}; {days} days late.",
        evidence={"control_number": d.control_number, "due": d.due},
    )


def _days(days: int | None) -> int | None:
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise ServiceError(f"interval_days: 1 to {MAX_DAYS} days, or empty for none")
    return days


def set_interval(session: Session, actor: str, control_number: str, days: int | None, *,
                 now: datetime) -> Medium:
    row = session.get(Medium, control_number)
    if row is None:
        raise NotFound(f"no medium {control_number!r}")
    before = {"wipe_interval_days": row.wipe_interval_days}
    row.wipe_interval_days = _days(days)
    session.flush()
    append_audit(session, actor=actor, action="medium.wipe_interval", target_type="medium",
                 target_id=control_number, before=before,
                 after={"wipe_interval_days": row.wipe_interval_days}, now=now)
    return row


def set_type_interval(session: Session, actor: str, media_type: str, days: int | None, *,
                      now: datetime) -> None:
    media_type = media_type.strip()
    if not media_type or len(media_type) > 100:
        raise ServiceError("media_type: 1-100 characters")
    row = session.get(MediaWipeInterval, media_type)
    before = None if row is None else {"interval_days": row.interval_days}
    days = _days(days)
    if days is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(MediaWipeInterval(media_type=media_type, interval_days=days))
    else:
        row.interval_days = days
    session.flush()
    append_audit(session, actor=actor, action="media.wipe_interval", target_type="media_type",
                 target_id=media_type, before=before, after={"interval_days": days}, now=now)
