"""Door log: every tap, filtered by time, door, person and result; CSV export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard import projections
from dashboard.camera.store import stills_for
from dashboard.camera.web import still_key
from dashboard.models import DoorAccess, Person
from dashboard.names import find_people, find_places
from dashboard.web import deps
from dashboard.web.csvsafe import csv_lines
from dashboard.web.forms import ApiDateTime, OptionalDateTime, local_input, localise

router = APIRouter()
PAGE = 100
CSV_BATCH = 5000
CSV_MAX_ROWS = 1_000_000


class DoorEventOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    node: str
    seq: int
    ts: datetime
    door: str
    direction: str
    granted: bool
    reason: str | None
    person_id: str | None
    person_name: str | None
    uid: str | None
    reader: str | None
    credential: str | None = None  # verified, weak (UID only) or failed, as the node reported


class DoorLogPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[DoorEventOut]
    next_before_id: int | None


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: OptionalDateTime = None
    end: OptionalDateTime = None
    door: str | None = Query(default=None, max_length=64)
    person: str | None = Query(default=None, max_length=64)
    result: Literal["", "granted", "denied"] = ""
    before_id: int | None = Query(default=None, ge=1)


class ApiFilters(Filters):
    start: ApiDateTime = None
    end: ApiDateTime = None


def _access_filter(request: Request, f: Filters, db: DbSession | None = None
                   ) -> projections.AccessFilter:
    """Door and person as a person types them: a name (or a staff number), or the id."""
    zone = deps.settings(request).zone
    people = doors = None
    if f.person:
        people = tuple(find_people(db, f.person)) if db is not None else (f.person,)
    if f.door:
        doors = tuple(d for d in find_places(deps.names(request), f.door)) or (f.door,)
    return projections.AccessFilter(
        since=localise(f.start, zone), until=localise(f.end, zone),
        person_ids=people, doors=doors,
        granted={"granted": True, "denied": False}.get(f.result),
        site=deps.principal(request).site,  # a site's account: that site's doors only
    )


def _names(db: DbSession, rows: list[DoorAccess]) -> dict[str, str]:
    ids = {r.person_id for r in rows if r.person_id}
    if not ids:
        return {}
    found = db.execute(select(Person.id, Person.name).where(Person.id.in_(ids)))
    return {pid: name for pid, name in found}


def _page(request: Request, db: DbSession, f: Filters) -> DoorLogPage:
    rows = projections.door_log(db, _access_filter(request, f, db), limit=PAGE,
                                before_id=f.before_id)
    names = _names(db, rows)
    items = [
        DoorEventOut(
            id=r.id, node=r.node, seq=r.seq, ts=r.ts, door=r.door, direction=r.direction,
            granted=r.granted, reason=r.reason, person_id=r.person_id,
            person_name=names.get(r.person_id or ""), uid=r.uid, reader=r.reader,
            credential=r.credential,
        )
        for r in rows
    ]
    return DoorLogPage(items=items, next_before_id=rows[-1].id if len(rows) == PAGE else None)


@router.get("/door-log", name="door_log.page", include_in_schema=False)
def door_log_page(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    f: Annotated[Filters, Query()],
) -> Response:
    page = _page(request, db, f)
    zone = deps.settings(request).zone
    flt = _access_filter(request, f, db)
    stills = stills_for(db, still_key(request), [(f"{e.node}:{e.seq}", e.ts) for e in page.items],
                        now=deps.now(request))
    return deps.render(request, "door_log.html", {
        "page": page, "f": f, "still_map": stills, "start_value": local_input(flt.since, zone),
        "total": projections.door_log_count(db, flt), "shown_before": f.before_id,
        "end_value": local_input(flt.until, zone),
        "base_query": urlencode([(k, v) for k, v in request.query_params.multi_items()
                                 if k != "before_id"]),
    })


@router.get("/door-log.csv", name="door_log.csv", include_in_schema=False)
def door_log_csv(
    request: Request, f: Annotated[Filters, Query()],
) -> Response:
    sm = request.app.state.sessionmaker
    with sm() as db:
        flt = _access_filter(request, f, db)
    t = deps.translator(request)
    n = deps.names(request)

    def rows() -> Iterator[list[object]]:
        before: int | None = f.before_id
        sent = 0
        with sm() as db:
            while sent < CSV_MAX_ROWS:
                batch = projections.door_log(db, flt, limit=CSV_BATCH, before_id=before)
                names = _names(db, batch)
                for r in batch:
                    yield [
                        t.time(r.ts, seconds=True), n.door(r.door),
                        t.label("direction", r.direction),
                        t.label("result", "granted" if r.granted else "denied"),
                        t.label("door_reason", r.reason) if r.reason else "",
                        r.person_id or "", names.get(r.person_id or "", ""), r.uid or "",
                        n.reader(r.reader), f"{r.node}:{r.seq}",
                    ]
                sent += len(batch)
                if len(batch) < CSV_BATCH:
                    return
                before = batch[-1].id

    header = [t("col.time"), t("col.door"), t("col.direction"), t("col.result"),
              t("col.reason"), t("col.id"), t("col.person"), t("col.uid"), t("col.reader"),
              "event"]
    stamp = deps.now(request).astimezone(deps.settings(request).zone).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        csv_lines(header, rows()), media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="door-log-{stamp}.csv"'},
    )


@router.get("/api/v1/events/door", name="api.events", response_model=DoorLogPage,
            tags=["door log"])
def door_log_api(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    f: Annotated[ApiFilters, Query()],
) -> DoorLogPage:
    return _page(request, db, f)
