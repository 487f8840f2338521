"""Overview: who is in the room now, today's entries, open alarms, entries per hour."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.web import deps, queries
from dashboard.web.chart import hourly_bars

router = APIRouter()


class InRoomOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: str
    name: str
    door: str
    since: datetime


class OverviewOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    in_room: list[InRoomOut]
    entries_today: int
    entries_per_hour: list[int]
    open_anomalies: int


def _overview(request: Request, db: DbSession) -> OverviewOut:
    zone = deps.settings(request).zone
    today = deps.now(request).astimezone(zone).date()
    hours = queries.entries_per_hour(db, today, zone)
    total, _ = queries.open_anomalies(db, limit=0)
    people = [InRoomOut(**vars(p)) for p in queries.in_room(db)]
    return OverviewOut(
        in_room=people, entries_today=sum(hours), entries_per_hour=hours, open_anomalies=total
    )


def _daily(request: Request, db: DbSession, zone: Any) -> list[tuple[date, int]]:
    """Entries per day for 30 days: the past days are counted once a day (they do not change),
    today on every page."""
    now = deps.now(request)
    today = now.astimezone(zone).date()
    cache = request.app.state.__dict__.setdefault("_daily_entries", {})
    past = cache.get(today)
    if past is None:
        past = queries.entries_per_day(db, now - timedelta(days=1), zone, days=29)
        cache.clear()
        cache[today] = past
    return [*past, *queries.entries_per_day(db, now, zone, days=1)]


@router.get("/", name="overview.page", include_in_schema=False)
def overview_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    from dashboard.review.sentences import Evidence, sentence

    data = _overview(request, db)
    _, alarms = queries.open_anomalies(db, limit=8)
    t, n = deps.translator(request), deps.names(request)
    ev = Evidence.load(db, alarms)
    zone = deps.settings(request).zone
    days = _daily(request, db, zone)
    return deps.render(request, "overview.html", {
        "data": data, "alarms": [(a, sentence(a, ev, t, n)) for a in alarms],
        "chart": hourly_bars(data.entries_per_hour),
        "daily": {"kind": "bars", "x": [f"{d.month}/{d.day}" for d, _ in days],
                  "x_label": t("timeline.day"),
                  "series": [{"label": t("overview.entries"), "values": [c for _, c in days],
                              "color": "#1f5fae"}]},
    })


@router.get("/api/v1/overview", name="api.overview", response_model=OverviewOut, tags=["overview"])
def overview_api(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> OverviewOut:
    return _overview(request, db)
