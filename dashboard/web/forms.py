"""Parsing of query and form values shared by the pages (site-local times, lists, flags)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import HTTPException
from pydantic import BeforeValidator, Field


def _blank_none(value: Any) -> Any:
    return None if value == "" else value


# Identifiers accepted by the API: ASCII only, so the JSON-schema regex and Python's agree (a
# subset of what the services accept).
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:@-]{1,128}$")]
ShortText = Annotated[str, Field(min_length=1, max_length=128)]

# An optional datetime from a page's query or form (datetime-local, read in the site zone):
# an empty input means "not given".
OptionalDateTime = Annotated[datetime | None, BeforeValidator(_blank_none)]

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("expected an RFC 3339 date-time with offset, e.g. 2026-11-22T09:00:00Z")
    return value


# An optional instant in the JSON API: RFC 3339 with an explicit offset, nothing looser.
ApiDateTime = Annotated[datetime | None, BeforeValidator(_rfc3339)]


def localise(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A naive datetime from a form is site-local time."""
    if value is None:
        return None
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def parse_local(value: str | None, zone: ZoneInfo) -> datetime | None:
    """A datetime-local or date input, read in the site zone, returned in UTC-aware form."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"not a date or time: {value[:40]!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed


def csv_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def local_input(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if value else ""
