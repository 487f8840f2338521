"""The printing page (releases, denials, expiries; per person and per printer), its CSV export,
the person-page section and the JSON API under /api/v1/printing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.printing import queries as Q
from dashboard.printing.texts import PRINTING, Texts
from dashboard.web import deps
from dashboard.web.csvsafe import csv_lines
from dashboard.web.forms import ApiDateTime, OptionalDateTime, local_input, localise

router = APIRouter()
PAGE = 100
PERSON_RECENT = 20

# Rows for dashboard.auth.roles.ROLE_MATRIX (the lead adds them there).

KIND_OF = {"release": Q.PRINT_RELEASE, "denied": Q.PRINT_DENIED, "expired": Q.PRINT_EXPIRED}


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: OptionalDateTime = None
    end: OptionalDateTime = None
    person: str | None = Query(default=None, max_length=128)
    printer: str | None = Query(default=None, max_length=128)
    kind: Literal["", "release", "denied", "expired"] = ""
    before_id: int | None = Query(default=None, ge=1)


class ApiFilters(Filters):
    start: ApiDateTime = None
    end: ApiDateTime = None


class PrintPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Q.PrintRecordOut]
    next_before_id: int | None


def texts(request: Request) -> Texts:
    return Texts(deps.translator(request), PRINTING)


def month_start(now: datetime, request: Request) -> datetime:
    local = now.astimezone(deps.settings(request).zone)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def to_filter(request: Request, f: Filters, *, default_month: bool = False) -> Q.PrintFilter:
    zone = deps.settings(request).zone
    since, until = localise(f.start, zone), localise(f.end, zone)
    if default_month and since is None and until is None:
        since = month_start(deps.now(request), request)
    return Q.PrintFilter(
        since=since, until=until, person_id=f.person or None, printer=f.printer or None,
        kinds=(KIND_OF[f.kind],) if f.kind else Q.KINDS,
    )


def _page(db: DbSession, flt: Q.PrintFilter, before_id: int | None) -> PrintPage:
    items, nxt = Q.records(db, flt, limit=PAGE, before_id=before_id)
    return PrintPage(items=items, next_before_id=nxt)


@router.get("/printing", name="printing.page", include_in_schema=False)
def printing_page(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    f: Annotated[Filters, Query()],
) -> Response:
    flt = to_filter(request, f, default_month=True)
    zone = deps.settings(request).zone
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "before_id"]
    if flt.since is not None and not f.start:
        query.append(("start", local_input(flt.since, zone)))
    return deps.render(request, "printing/page.html", {
        "t": texts(request), "f": f, "page": _page(db, flt, f.before_id),
        "sums": Q.summary(db, flt), "start_value": local_input(flt.since, zone),
        "end_value": local_input(flt.until, zone), "base_query": urlencode(query),
    })


CSV_COLUMNS = ("col.time", "printing.kind", "printing.printer", "col.id", "col.person",
               "printing.jobs", "printing.copies", "printing.pages", "col.reason",
               "printing.detail")


def csv_row(t: Texts, r: Q.PrintRecordOut) -> list[Any]:
    detail = r.detail or ""
    if r.kind == Q.PRINT_EXPIRED:
        detail = " ".join(f"{j.job_id}:{j.cups_user}:{j.person_id or Q.UNKNOWN}:{j.held_hours:g}h"
                          for j in r.jobs)
    return [t.time(r.ts), t(f"printing.kind.{r.kind}"), r.printer, r.person_id or "",
            r.person_name or "", " ".join(str(j) for j in r.job_ids),
            "" if r.copies is None else r.copies, "" if r.pages is None else r.pages,
            t.maybe(f"printing.reason.{r.reason}", r.reason) if r.reason else "", detail,
            f"{r.node}:{r.seq}"]


@router.get("/printing.csv", name="printing.csv", include_in_schema=False)
def printing_csv(request: Request, f: Annotated[Filters, Query()]) -> Response:
    flt = to_filter(request, f)
    t = texts(request)
    sm = request.app.state.sessionmaker

    def rows() -> Iterator[list[Any]]:
        with sm() as db:
            for r in Q.iter_records(db, flt):
                yield csv_row(t, r)

    header = [t(k) for k in CSV_COLUMNS] + ["event"]
    stamp = deps.now(request).astimezone(deps.settings(request).zone).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        csv_lines(header, rows()), media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="printing-{stamp}.csv"'},
    )


def person_context(request: Request, db: DbSession, person_id: str) -> dict[str, Any]:
    """What ``printing/_person.html`` needs: this month's totals and the latest records.

    The person page adds it to its context (``ctx.update(person_context(...))``) and includes
    the template."""
    now = deps.now(request)
    since = month_start(now, request)
    month = Q.summary(db, Q.PrintFilter(since=since, person_id=person_id))
    recent, _ = Q.records(db, Q.PrintFilter(person_id=person_id), limit=PERSON_RECENT)
    mine = [p for p in month.by_person if p.person_id == person_id]
    return {"print_records": {
        "t": texts(request), "person_id": person_id, "month": since,
        "totals": mine[0] if mine else Q.PersonTotals(person_id=person_id),
        "recent": recent, "limit": PERSON_RECENT,
    }}


@router.get("/printing/people/{person_id}", name="printing.person", include_in_schema=False)
def printing_person(
    request: Request, person_id: str, db: Annotated[DbSession, Depends(deps.db)],
) -> Response:
    ctx = person_context(request, db, person_id[:128])
    names = Q.person_names(db, {person_id})
    return deps.render(request, "printing/person.html",
                       {"t": texts(request), "person_name": names.get(person_id, ""), **ctx})


@router.get("/api/v1/printing/events", name="api.printing.events", response_model=PrintPage,
            tags=["printing"])
def printing_events_api(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    f: Annotated[ApiFilters, Query()],
) -> PrintPage:
    return _page(db, to_filter(request, f), f.before_id)


@router.get("/api/v1/printing/summary", name="api.printing.summary",
            response_model=Q.PrintSummary, tags=["printing"])
def printing_summary_api(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    f: Annotated[ApiFilters, Query()],
) -> Q.PrintSummary:
    return Q.summary(db, to_filter(request, f))
