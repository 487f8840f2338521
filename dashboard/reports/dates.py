"""Dates as a Japanese business document writes them: 令和8年11月30日 (the era, 元年 for its
first year) or 2026年11月30日, times in the site's zone, periods inclusive (〜 the last day).

Written here, not taken from a library (japanera on PyPI): the documents need only the era of
a date since 1989 (平成, 令和); the two rows below are the official start dates, and a table
this small is easier to audit than a dependency and its format mini-language.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Lang = Literal["ja", "en"]
DateStyle = Literal["era", "western"]
ERAS = ((date(2019, 5, 1), "令和"), (date(1989, 1, 8), "平成"))
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")


def era_year(d: date) -> str:
    """令和8年 / 令和元年 / 平成31年; before 平成 the Western year."""
    for start, name in ERAS:
        if d >= start:
            n = d.year - start.year + 1
            return f"{name}{'元' if n == 1 else n}年"
    return f"{d.year}年"


def day(d: date, lang: Lang, style: DateStyle = "western") -> str:
    if lang == "en":
        return f"{d.day} {MONTHS_EN[d.month - 1]} {d.year}"
    year = era_year(d) if style == "era" else f"{d.year}年"
    return f"{year}{d.month}月{d.day}日"


def moment(ts: datetime, zone: ZoneInfo, lang: Lang) -> str:
    """A time in the site's zone: 2026年11月5日 10:30 / 5 Nov 2026 10:30."""
    local = ts.astimezone(zone)
    if lang == "en":
        return f"{local.day} {MONTHS_EN[local.month - 1][:3]} {local.year} {local:%H:%M}"
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def period(first: date, last: date, lang: Lang, style: DateStyle = "western") -> str:
    """Both ends included: 2026年11月1日〜2026年11月30日."""
    sep = " – " if lang == "en" else "〜"
    return f"{day(first, lang, style)}{sep}{day(last, lang, style)}"


def month_name(first: date, lang: Lang, style: DateStyle = "western") -> str:
    if lang == "en":
        return f"{MONTHS_EN[first.month - 1]} {first.year}"
    year = era_year(first) if style == "era" else f"{first.year}年"
    return f"{year}{first.month}月分"


def local_days(since: datetime, until: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """The first and the last local date of [since, until)."""
    return (since.astimezone(zone).date(),
            (until - timedelta(microseconds=1)).astimezone(zone).date())


def zone_name(zone: ZoneInfo, lang: Lang) -> str:
    if zone.key == "Asia/Tokyo":
        return "日本時間" if lang == "ja" else "Japan Standard Time"
    return zone.key


def previous_month(now: datetime, zone: ZoneInfo) -> str:
    """The month before ``now``'s local month, as YYYY-MM (the month a report is due for)."""
    first = now.astimezone(zone).date().replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")
