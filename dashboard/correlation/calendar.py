"""Japanese public holidays (the ``holidays`` package is imported here only)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays


@lru_cache(maxsize=64)
def _year(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("JP", years=year).keys())


def is_jp_holiday(day: date) -> bool:
    return day in _year(day.year)


def holiday_name(day: date) -> str | None:
    name = holidays.country_holidays("JP", years=day.year, language="ja").get(day)
    return str(name) if name else None
