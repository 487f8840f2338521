"""Presence: who is in the room now and since when, and past stays in a time range."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.names import find_people
from dashboard.web import deps, queries
from dashboard.web.forms import ApiDateTime, OptionalDateTime, local_input, localise

router = APIRouter()
MAX_ROWS = 200


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


def _presence(
    request: Request, db: DbSession, f: PresenceFilter
) -> tuple[PresenceOut, datetime, datetime]:
    zone = deps.settings(request).zone
    now = deps.now(request)
    until = localise(f.end, zone) or now
    since = localise(f.start, zone) or (until - timedelta(days=1))
    inside = [
        StayOut(person_id=p.person_id, person_name=p.name, door=p.door, entered_at=p.since,
                left_at=None)
        for p in queries.in_room(db, limit=MAX_ROWS)
    ]
    stays: list[StayOut] = []
    people = find_people(db, f.person) if f.person else [None]
    for person in people[:20]:
        stays += [StayOut(**vars(s)) for s in queries.stays_between(db, since, until, person,
                                                                     MAX_ROWS)]
    stays.sort(key=lambda s: (s.entered_at is None, s.entered_at), reverse=True)
    return PresenceOut(inside=inside, stays=stays), since, until


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
