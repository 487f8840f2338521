"""Site settings that go into the policy: lockdown (whole site or some doors), time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models.people import Door, SiteSettings
from dashboard.services.base import (
    Ident,
    Input,
    NotFound,
    ServiceError,
    check_actor,
    rights_changed,
    validate,
    when,
)


class LockdownIn(Input):
    lockdown: bool
    doors: list[Ident] = []
    reason: str | None = Field(default=None, max_length=2000)


class TimezoneIn(Input):
    timezone: str

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def site_dict(s: SiteSettings) -> dict[str, Any]:
    return {
        "site": s.site,
        "timezone": s.timezone,
        "lockdown": s.lockdown,
        "lockdown_doors": list(s.lockdown_doors or []),
        "lockdown_reason": s.lockdown_reason,
    }


def get_site(session: Session, site: str, *, now: datetime | None = None) -> SiteSettings:
    """The site's settings row, created with defaults (and a dirty policy) on first use."""
    row = session.get(SiteSettings, site)
    if row is None:
        row = SiteSettings(
            site=site,
            timezone="Asia/Tokyo",
            lockdown=False,
            lockdown_doors=[],
            policy_dirty=True,
            policy_dirty_at=when(now),
        )
        session.add(row)
        session.flush()
    return row


def set_lockdown(
    session: Session,
    actor: str,
    site: str,
    data: LockdownIn | dict[str, Any],
    *,
    now: datetime | None = None,
) -> SiteSettings:
    """Lock the whole site (``lockdown``) and/or listed doors; nodes deny every tap there."""
    check_actor(actor)
    inp = validate(LockdownIn, data)
    at = when(now)
    if inp.doors:
        known = set(session.scalars(select(Door.id).where(Door.id.in_(inp.doors))))
        missing = sorted(set(inp.doors) - known)
        if missing:
            raise NotFound(f"unknown door(s): {', '.join(missing)}")
    row = get_site(session, site, now=at)
    before = site_dict(row)
    reason = (inp.reason or "").strip() or None
    on = inp.lockdown or bool(inp.doors)
    was_on = row.lockdown or bool(row.lockdown_doors)
    if on and not reason and not was_on:
        raise ServiceError("a reason is required to start a lockdown")
    row.lockdown, row.lockdown_doors = inp.lockdown, sorted(set(inp.doors))
    if on and not was_on:
        row.lockdown_since, row.lockdown_by = at, actor
    if on:
        row.lockdown_reason = reason or row.lockdown_reason
    else:  # ended: the audit record keeps the reason it ran for and why it ended
        row.lockdown_reason = reason
        row.lockdown_since = row.lockdown_by = None
    session.flush()
    if site_dict(row) != before:
        rights_changed(session, actor, "site.lockdown", "site", site, before, site_dict(row), at)
    return row


def set_timezone(
    session: Session,
    actor: str,
    site: str,
    data: TimezoneIn | dict[str, Any],
    *,
    now: datetime | None = None,
) -> SiteSettings:
    check_actor(actor)
    inp = validate(TimezoneIn, data)
    at = when(now)
    row = get_site(session, site, now=at)
    before = site_dict(row)
    row.timezone = inp.timezone
    session.flush()
    if site_dict(row) != before:
        rights_changed(session, actor, "site.timezone", "site", site, before, site_dict(row), at)
    return row
