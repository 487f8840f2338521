"""Presence: who is in the room now and since when, and past stays in a time range."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard import projections
from dashboard.models import Person, Presence
from dashboard.web import deps
from dashboard.web.forms import ApiDateTime, OptionalDateTime, local_input, localise

router = APIRouter()
MAX_ROWS = 500


class StayOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: str
    person_name: str | None
    door: str
    entered_at: datetime | None
    left_at: datetime | None


class PresenceOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inside: list[StayOut]
    stays: list[StayOut]


class PresenceFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: OptionalDateTime = None
    end: OptionalDateTime = None
    person: str | None = Query(default=None, max_length=64)


class ApiPresenceFilter(PresenceFilter):
    start: ApiDateTime = None
    end: ApiDateTime = None


def _out(rows: list[Presence], names: dict[str, str]) -> list[StayOut]:
    return [
        StayOut(person_id=p.person_id, person_name=names.get(p.person_id), door=p.door,
                entered_at=p.entered_at, left_at=p.left_at)
        for p in rows
    ]


def _presence(request: Request, db: DbSession, f: PresenceFilter) -> tuple[PresenceOut, datetime, datetime]:
    zone = deps.settings(request).zone
    now = deps.now(request)
    until = localise(f.end, zone) or now
    since = localise(f.start, zone) or (until - timedelta(days=1))
    inside = projections.present_now(db)[:MAX_ROWS]
    stays = projections.presence_between(db, since, until, f.person or None)
    stays = sorted(stays, key=lambda p: p.entered_at or since, reverse=True)[:MAX_ROWS]
    ids = {p.person_id for p in (*inside, *stays)}
    names = dict(db.execute(select(Person.id, Person.name).where(Person.id.in_(ids))).all()) if ids else {}
    return PresenceOut(inside=_out(inside, names), stays=_out(stays, names)), since, until


@router.get("/presence", name="presence.page", include_in_schema=False)
def presence_page(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    f: Annotated[PresenceFilter, Query()],
) -> Response:
    data, since, until = _presence(request, db, f)
    zone = deps.settings(request).zone
    return deps.render(request, "presence.html", {
        "data": data, "f": f, "start_value": local_input(since, zone),
        "end_value": local_input(until, zone), "now": deps.now(request),
    })


@router.get("/api/v1/presence", name="api.presence", response_model=PresenceOut,
            tags=["presence"])
def presence_api(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    f: Annotated[ApiPresenceFilter, Query()],
) -> PresenceOut:
    return _presence(request, db, f)[0]
