"""Messages in Japanese (the default) and English; times shown in the site's time zone.

Catalogues are JSON files under dashboard/locales/. Stored times are UTC; the UI converts them
to the site zone (Asia/Tokyo by default) only when rendering.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

LANGUAGES: tuple[str, ...] = ("ja", "en")
LANGUAGE_COOKIE = "secroom_lang"
_LOCALES = Path(__file__).with_name("locales")


@cache
def catalogue(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        raise KeyError(f"no catalogue for language {lang!r}")
    data = json.loads((_LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"catalogue {lang}.json is not a JSON object")
    return {str(k): str(v) for k, v in data.items()}


def translate(lang: str, key: str, **values: object) -> str:
    """The message for ``key``; falls back to English, then to the key itself."""
    text = catalogue(lang if lang in LANGUAGES else "en").get(key)
    if text is None:
        text = catalogue("en").get(key, key)
    return text.format(**values) if values else text


def pick_language(cookie: str | None, user_language: str | None, default: str) -> str:
    for candidate in (cookie, user_language, default):
        if candidate in LANGUAGES:
            return candidate  # type: ignore[return-value]
    return "ja"


def local_time(value: datetime | None, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        raise ValueError("naive datetime; stored times are UTC and must be aware")
    return value.astimezone(zone).strftime(fmt)


_WEEKDAYS_JA = "月火水木金土日"
_WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
              "Dec")
ZONE_NAMES = {"Asia/Tokyo": ("日本時間", "Japan time"), "UTC": ("協定世界時", "UTC")}


def format_date(day: date, lang: str) -> str:
    """2026年12月7日(月) in Japanese, Mon 7 Dec 2026 in English."""
    if lang == "ja":
        return f"{day.year}年{day.month}月{day.day}日({_WEEKDAYS_JA[day.weekday()]})"
    return f"{_WEEKDAYS_EN[day.weekday()]} {day.day} {_MONTHS_EN[day.month - 1]} {day.year}"


def format_datetime(value: datetime | None, zone: ZoneInfo, lang: str, *,
                    seconds: bool = False) -> str:
    """A stored (UTC) instant in the site zone: 2026年12月7日(月) 10:42."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        raise ValueError("naive datetime; stored times are UTC and must be aware")
    local = value.astimezone(zone)
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    return f"{format_date(local.date(), lang)} {clock}"


def zone_name(zone: ZoneInfo, lang: str) -> str:
    pair = ZONE_NAMES.get(zone.key)
    if pair:
        return pair[0] if lang == "ja" else pair[1]
    offset = datetime.now(zone).utcoffset()
    hours = (offset.total_seconds() / 3600) if offset is not None else 0
    return f"UTC{hours:+g}"


class Translator:
    """Bound to one request's language and the site zone; handed to templates."""

    def __init__(self, lang: str, zone: ZoneInfo) -> None:
        self.lang = lang
        self.zone = zone

    def __call__(self, key: str, **values: object) -> str:
        return translate(self.lang, key, **values)

    def maybe(self, key: str, fallback: str) -> str:
        """The message for ``key`` if a catalogue has it, else ``fallback`` (e.g. a raw code)."""
        if key in catalogue(self.lang) or key in catalogue("en"):
            return translate(self.lang, key)
        return fallback

    @staticmethod
    def duration(start: datetime | None, end: datetime | None) -> str:
        """H:MM between two instants (— when either is unknown)."""
        if start is None or end is None:
            return "—"
        seconds = max(int((end - start).total_seconds()), 0)
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}"

    def time(self, value: datetime | None, fmt: str | None = None, *,
             seconds: bool = False) -> str:
        """An instant in the site zone: 2026年12月7日(月) 10:42 (or ``fmt`` for strftime)."""
        if fmt is not None:
            return local_time(value, self.zone, fmt)
        return format_datetime(value, self.zone, self.lang, seconds=seconds)

    def date(self, value: date | datetime | None) -> str:
        if value is None:
            return "—"
        if isinstance(value, datetime):
            value = value.astimezone(self.zone).date()
        return format_date(value, self.lang)

    def hm(self, value: datetime | None, seconds: bool = False) -> str:
        """Only the clock time (10:42), for rows already grouped by day."""
        return local_time(value, self.zone, "%H:%M:%S" if seconds else "%H:%M")

    def label(self, group: str, key: str | None, default: str | None = None) -> str:
        from dashboard.labels import label

        return label(group, key, self.lang, default)

    @property
    def zone_name(self) -> str:
        return zone_name(self.zone, self.lang)
