"""Which snapshots retention keeps. Pure: snapshot times in, ids to keep out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo


def _buckets(key: Callable[[datetime], object], times: Sequence[tuple[str, datetime]],
             count: int) -> set[str]:
    keep: set[str] = set()
    seen: set[object] = set()
    for sid, t in times:  # newest first
        if len(seen) >= count:
            break
        b = key(t)
        if b not in seen:
            seen.add(b)
            keep.add(sid)
    return keep


def select_keep(snapshots: Sequence[tuple[str, datetime]], *, daily: int, weekly: int,
                monthly: int, tz: str) -> set[str]:
    """Keep the newest snapshot of each of the last ``daily`` days, ``weekly`` ISO weeks and
    ``monthly`` months (local time in ``tz``) that have a snapshot, like restic's --keep-*."""
    if daily <= 0 and weekly <= 0 and monthly <= 0:
        raise ValueError("a retention policy must keep something (all counts are 0)")
    zone = ZoneInfo(tz)
    local = sorted(((sid, t.astimezone(zone)) for sid, t in snapshots),
                   key=lambda p: (p[1], p[0]), reverse=True)

    def day(t: datetime) -> date:
        return t.date()

    def week(t: datetime) -> tuple[int, int]:
        iso = t.isocalendar()
        return iso.year, iso.week

    def month(t: datetime) -> tuple[int, int]:
        return t.year, t.month

    return (_buckets(day, local, daily) | _buckets(week, local, weekly)
            | _buckets(month, local, monthly))
