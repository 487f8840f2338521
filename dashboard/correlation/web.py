"""Findings (with their joined evidence) and the anomaly workflow's resolve step, a person's
timeline, and a re-run over a period. Acknowledging uses the anomalies router's route.

``router`` is one of ``dashboard.app.routers()``; its roles are rows of
``dashboard.auth.roles.ROLE_MATRIX``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard import anomalies as service
from dashboard.auth.service import Principal
from dashboard.correlation.rerun import rerun
from dashboard.correlation.timeline import timeline
from dashboard.models.anomalies import Anomaly
from dashboard.models.correlation import Finding
from dashboard.models.people import Person
from dashboard.web import deps

router = APIRouter()


def _findings(db: DbSession, state: str) -> list[tuple[Finding, Anomaly | None]]:
    q = select(Finding, Anomaly).outerjoin(Anomaly, Anomaly.id == Finding.anomaly_id).where(
        Finding.withdrawn.is_(False))
    if state == "open":
        q = q.where(Anomaly.state != "resolved")
    return [(f, a) for f, a in db.execute(q.order_by(Finding.at.desc()).limit(500))]


@router.get("/findings", name="findings.page", include_in_schema=False)
def findings_page(state: Annotated[str, Query(pattern="^(open|all)$")] = "open") -> Response:
    """Findings are the evidence of review items: the queue shows them."""
    return RedirectResponse("/review?state=all" if state == "all" else "/review",
                            status_code=303)


@router.post("/findings/{anomaly_id}/resolve", name="findings.resolve", include_in_schema=False)
def findings_resolve(request: Request, anomaly_id: deps.RowId,
                     db: Annotated[DbSession, Depends(deps.db)],
                     who: Annotated[Principal, Depends(deps.principal)],
                     reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    try:
        service.resolve(db, who.username, anomaly_id, reason, now=deps.now(request))
        db.commit()
    except service.AnomalyError as exc:
        db.rollback()
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return RedirectResponse(f"/review/{anomaly_id}?msg=common.saved", status_code=303)


class FindingOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    rule: str
    severity: str
    at: datetime
    person_id: str | None
    node: str | None
    explanation: str
    anomaly_id: int | None
    anomaly_state: str | None


@router.get("/api/v1/findings", name="api.findings.list", response_model=list[FindingOut],
            tags=["correlation"])
def findings_api(request: Request, db: Annotated[DbSession, Depends(deps.db)],
                 state: Annotated[str, Query(pattern="^(open|all)$")] = "open",
                 lang: Annotated[str, Query(pattern="^(ja|en)$")] = "en") -> list[FindingOut]:
    return [FindingOut(key=f.dedupe_key, rule=f.rule, severity=f.severity, at=f.at,
                       person_id=f.person_id, node=f.node,
                       explanation=f.explanation_ja if lang == "ja" else f.explanation_en,
                       anomaly_id=f.anomaly_id, anomaly_state=a.state if a else None)
            for f, a in _findings(db, state)]


def _day(d: date | None, request: Request, default: date) -> datetime:
    d = d or default
    return datetime(d.year, d.month, d.day, tzinfo=deps.settings(request).zone)


@router.get("/people/{person_id}/timeline", name="timeline.page", include_in_schema=False)
def timeline_page(request: Request, person_id: str, db: Annotated[DbSession, Depends(deps.db)],
                  day: date | None = None) -> Response:
    """A person's day, all sources joined (stays, door taps, number accesses, prints, room-PC
    records, USB on their hosts), drawn as the review items' time strip, with the day's review
    items."""
    from dashboard.review.day import day_context

    if db.get(Person, person_id) is None:
        raise HTTPException(status_code=404, detail="no such person")
    start = _day(day, request, deps.now(request).astimezone(deps.settings(request).zone).date())
    return deps.render(request, "review/day.html",
                       day_context(request, db, person_id, start))


class ItemOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ts: datetime
    kind: str
    ref: str
    text: str


@router.get("/api/v1/people/{person_id}/timeline", name="api.timeline",
            response_model=list[ItemOut], responses=deps.ERRORS, tags=["correlation"])
def timeline_api(request: Request, person_id: str, db: Annotated[DbSession, Depends(deps.db)],
                 since: date, until: date) -> list[ItemOut]:
    if until <= since or (until - since).days > 62:
        raise HTTPException(status_code=400, detail="give 1 to 62 days")
    items = timeline(db, person_id, _day(since, request, since), _day(until, request, until))
    return [ItemOut(ts=i.ts, kind=i.kind, ref=i.ref, text=i.text) for i in items]


class RerunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: date
    until: date = Field(description="exclusive")


class RerunOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: int
    findings: int
    new: int
    withdrawn: int


@router.post("/api/v1/correlation/rerun", name="api.correlation.rerun", response_model=RerunOut,
             responses=deps.ERRORS, tags=["correlation"])
def rerun_api(request: Request, body: RerunIn, db: Annotated[DbSession, Depends(deps.db)],
              who: Annotated[Principal, Depends(deps.principal)]) -> RerunOut:
    if body.until <= body.since or (body.until - body.since).days > 400:
        raise HTTPException(status_code=400, detail="give 1 to 400 days")
    from dashboard.correlation.sources import loans

    res = rerun(db, _day(body.since, request, body.since), _day(body.until, request, body.until),
                deps.now(request), loans=loans(db))
    db.commit()
    p = res.persisted
    return RerunOut(rows=res.rows, findings=len(res.findings), new=len(p.new) if p else 0,
                    withdrawn=len(p.withdrawn) if p else 0)
