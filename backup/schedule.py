"""When the nightly run is due. Pure: takes `now`, never reads the clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def next_run(now: datetime, at: time, tz: str) -> datetime:
    """The first instant strictly after ``now`` whose local wall time in ``tz`` is ``at``.

    ``now`` must be timezone-aware. The result is aware, in ``tz``. A wall time that does not
    exist on a day (spring-forward gap) runs at the same offset-shifted instant; an ambiguous
    one (fall-back) runs at its first occurrence.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    day = local.date()
    for _ in range(3):
        candidate = datetime.combine(day, at.replace(tzinfo=None), tzinfo=zone).replace(fold=0)
        # normalise non-existent wall times through UTC
        candidate = candidate.astimezone(UTC).astimezone(zone)
        if candidate > now:
            return candidate
        day += timedelta(days=1)
    raise AssertionError("unreachable: a wall time recurs within three days")
