"""Read-side queries the pages and the API share (indexed, bounded, pure SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session as DbSession

from dashboard.models import Anomaly, DoorAccess, Person, Presence


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where the site-local ``day`` starts and ends."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class InRoom:
    person_id: str
    name: str
    door: str
    since: datetime


def in_room(db: DbSession, limit: int = 500) -> list[InRoom]:
    rows = db.execute(
        select(Presence.person_id, Person.name, Presence.door, Presence.entered_at)
        .outerjoin(Person, Person.id == Presence.person_id)
        .where(Presence.left_at.is_(None), Presence.entered_at.is_not(None))
        .order_by(Presence.entered_at.desc())
        .limit(limit)
    ).all()
    return [InRoom(r[0], r[1] or r[0], r[2], r[3]) for r in rows]


def entries_per_hour(db: DbSession, day: date, zone: ZoneInfo) -> list[int]:
    """Granted entries (direction in) per site-local hour of ``day``."""
    start, end = local_day_bounds(day, zone)
    counts = [0] * 24
    stamps = db.scalars(
        select(DoorAccess.ts).where(
            DoorAccess.granted.is_(True), DoorAccess.ts >= start, DoorAccess.ts < end,
            DoorAccess.direction == "in",
        )
    )
    for ts in stamps:
        counts[ts.astimezone(zone).hour] += 1
    return counts


def open_anomalies(db: DbSession, limit: int = 20) -> tuple[int, list[Anomaly]]:
    total = db.scalar(select(func.count()).select_from(Anomaly).where(Anomaly.state == "open"))
    rows = db.scalars(
        select(Anomaly).where(Anomaly.state == "open")
        .order_by(Anomaly.last_seen_at.desc()).limit(limit)
    ).all()
    return int(total or 0), list(rows)


@dataclass(frozen=True)
class DoorLogFilter:
    start: datetime | None = None
    end: datetime | None = None
    door: str | None = None
    person_id: str | None = None
    granted: bool | None = None
    reason: str | None = None


def door_log_query(f: DoorLogFilter) -> Select[tuple[DoorAccess, str | None]]:
    q = select(DoorAccess, Person.name).outerjoin(Person, Person.id == DoorAccess.person_id)
    if f.start is not None:
        q = q.where(DoorAccess.ts >= f.start)
    if f.end is not None:
        q = q.where(DoorAccess.ts < f.end)
    if f.door:
        q = q.where(DoorAccess.door == f.door)
    if f.person_id:
        q = q.where(DoorAccess.person_id == f.person_id)
    if f.granted is not None:
        q = q.where(DoorAccess.granted.is_(f.granted))
    if f.reason:
        q = q.where(DoorAccess.reason == f.reason)
    return q.order_by(DoorAccess.ts.desc(), DoorAccess.id.desc())


def presence_query(
    start: datetime | None, end: datetime | None, person_id: str | None, door: str | None
) -> Select[tuple[Presence, str | None]]:
    q = select(Presence, Person.name).outerjoin(Person, Person.id == Presence.person_id)
    if start is not None:  # intervals overlapping [start, end)
        q = q.where((Presence.left_at.is_(None)) | (Presence.left_at >= start))
    if end is not None:
        q = q.where(Presence.entered_at < end)
    if person_id:
        q = q.where(Presence.person_id == person_id)
    if door:
        q = q.where(Presence.door == door)
    return q.order_by(Presence.entered_at.desc(), Presence.id.desc())
