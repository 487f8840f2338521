"""Messages in Japanese (the default) and English; times shown in the site's time zone.

Catalogues are JSON files under dashboard/locales/. Stored times are UTC; the UI converts them
to the site zone (Asia/Tokyo by default) only when rendering.
"""

from __future__ import annotations

import json
from datetime import datetime
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

    def time(self, value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        return local_time(value, self.zone, fmt)
