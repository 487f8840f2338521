"""Weekly time windows and Japanese public holidays (pure: the caller passes ``now``).

Holidays come from the ``holidays`` package (substitute holidays and citizens' holidays
included), never from a hand-written list. Days are judged in the site's local time zone, so
00:30 JST on a holiday is a holiday even though it is still the day before in UTC.
"""

from __future__ import annotations

from datetime import date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from controller.policy import Group, TimeWindow


def local_time(now: datetime, tz: ZoneInfo) -> datetime:
    """``now`` (timezone-aware) in the site's zone; a naive ``now`` is a programming error."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(tz)


@lru_cache(maxsize=32)
def _japanese_holidays(year: int) -> dict[date, str]:
    # imported on first use (some 3.5 MB with all its calendars): only a group with time
    # windows asks, so a node whose rights have none never loads it
    import holidays

    return dict(holidays.country_holidays("JP", years=year).items())


def japanese_holiday(day: date) -> str | None:
    """The holiday's name if ``day`` is a Japanese public holiday, else None."""
    return _japanese_holidays(day.year).get(day)


def is_japanese_holiday(day: date) -> bool:
    return japanese_holiday(day) is not None


def window_contains(window: TimeWindow, local: datetime) -> bool:
    """Is local wall time inside the window (start inclusive, end exclusive)?"""
    if local.weekday() not in window.days:
        return False
    clock = local.time().replace(tzinfo=None)
    if clock < window.start:
        return False
    return window.end == time(0) or clock < window.end


def group_open_at(group: Group, local: datetime) -> bool:
    """May members of ``group`` use its doors and printers at this local time?"""
    if not group.windows:
        return True
    if not group.on_holidays and is_japanese_holiday(local.date()):
        return False
    return any(window_contains(w, local) for w in group.windows)
