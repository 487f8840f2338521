"""Parsing of query and form values shared by the pages (site-local times, lists, flags)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import HTTPException
from pydantic import BeforeValidator


def _blank_none(value: Any) -> Any:
    return None if value == "" else value


# An optional datetime from a query or form: an empty input means "not given".
OptionalDateTime = Annotated[datetime | None, BeforeValidator(_blank_none)]


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
