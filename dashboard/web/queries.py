"""Read-side queries the pages and the API share (indexed, bounded, pure SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, union_all
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
    return [InRoom(r[0], r[1] or r[0], r[2], r[3]) for r in rows if r[3] is not None]


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


def entries_per_day(db: DbSession, now: datetime, zone: ZoneInfo, days: int = 30
                    ) -> list[tuple[date, int]]:
    """Granted entries per site-local day for the ``days`` days up to today."""
    today = now.astimezone(zone).date()
    out = []
    for i in range(days - 1, -1, -1):  # one count per day on the (granted, ts) index
        day = today - timedelta(days=i)
        start, end = local_day_bounds(day, zone)
        n = db.scalar(select(func.count()).select_from(DoorAccess).where(
            DoorAccess.granted.is_(True), DoorAccess.ts >= start, DoorAccess.ts < end,
            DoorAccess.direction == "in"))
        out.append((day, int(n or 0)))
    return out


def open_anomalies(db: DbSession, limit: int = 20) -> tuple[int, list[Anomaly]]:
    total = db.scalar(select(func.count()).select_from(Anomaly).where(Anomaly.state == "open"))
    rows = db.scalars(
        select(Anomaly).where(Anomaly.state == "open")
        .order_by(Anomaly.at.desc(), Anomaly.id.desc()).limit(limit)
    ).all()
    return int(total or 0), list(rows)


@dataclass(frozen=True)
class Stay:
    person_id: str
    person_name: str | None
    door: str
    entered_at: datetime | None
    left_at: datetime | None


def stays_between(
    db: DbSession, since: datetime, until: datetime, person_id: str | None = None,
    limit: int = 200,
) -> list[Stay]:
    """Stays overlapping [since, until), newest first, with the person's name.

    Written as a union of two index-friendly halves (left at or after ``since`` via the
    left_at index; still inside via the open-interval index) instead of one OR, which would
    scan every stay ever recorded. Plain rows, not ORM objects: this is a hot page.
    """
    left_recently = select(Presence.id).where(
        Presence.left_at >= since,
        or_(Presence.entered_at.is_(None), Presence.entered_at < until),
    )
    still_inside = select(Presence.id).where(
        Presence.left_at.is_(None), Presence.entered_at < until
    )
    if person_id:
        left_recently = left_recently.where(Presence.person_id == person_id)
        still_inside = still_inside.where(Presence.person_id == person_id)
    ids = union_all(left_recently, still_inside).subquery()
    q = (
        select(Presence.person_id, Person.name, Presence.door, Presence.entered_at,
               Presence.left_at)
        .outerjoin(Person, Person.id == Presence.person_id)
        .where(Presence.id.in_(select(ids.c.id)))
        .order_by(Presence.entered_at.desc(), Presence.id.desc())
        .limit(limit)
    )
    return [Stay(*row) for row in db.execute(q)]
