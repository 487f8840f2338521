"""Anomalies: the open list (or all), acknowledged with a reason (audited by the service)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard import anomalies as service
from dashboard.auth import scope
from dashboard.auth.service import Principal
from dashboard.models import Anomaly
from dashboard.web import deps

router = APIRouter()
LIMIT = 200


class AnomalyOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    kind: str
    severity: str
    node: str | None
    subject: str
    detail: dict[str, Any]
    count: int
    state: str
    first_seen_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    reason: str | None
    resolved_at: datetime | None


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


def _list(db: DbSession, all_states: bool, who: Principal) -> list[Anomaly]:
    q = scope.only_site(select(Anomaly), who, Anomaly.node)
    if not all_states:
        q = q.where(Anomaly.state == "open")
    return list(db.scalars(q.order_by(Anomaly.last_seen_at.desc(), Anomaly.id.desc()).limit(LIMIT)))


@router.get("/anomalies", name="anomalies.page", include_in_schema=False)
def anomalies_page(all: bool = False) -> Response:  # noqa: A002
    """Anomalies are items of the review queue now."""
    return RedirectResponse("/review?state=all" if all else "/review", status_code=303)


def _ack(db: DbSession, who: Principal, anomaly_id: int, reason: str, now: datetime
         ) -> Anomaly:
    scope.require_site_row(db, who, Anomaly.id, anomaly_id, Anomaly.node, "anomaly")
    try:
        row = service.acknowledge(db, who.username, anomaly_id, reason, now=now)
    except service.AnomalyError as exc:
        db.rollback()
        code = 404 if str(exc).startswith("no anomaly") else 409
        raise HTTPException(status_code=code, detail=str(exc)) from exc
    db.commit()
    return row


@router.post("/anomalies/{anomaly_id}/ack", name="anomalies.ack", include_in_schema=False)
def anomalies_ack(
    request: Request, anomaly_id: deps.RowId, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    _ack(db, who, anomaly_id, reason, deps.now(request))  # an error is an error page
    return RedirectResponse(f"/review/{anomaly_id}?msg=common.saved", status_code=303)


@router.get("/api/v1/anomalies", name="api.anomalies.list", response_model=list[AnomalyOut],
            tags=["anomalies"])
def anomalies_api(
    db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    state: Annotated[str, Query(pattern="^(open|all)$")] = "open",
) -> list[AnomalyOut]:
    return [AnomalyOut.model_validate(a, from_attributes=True)
            for a in _list(db, state == "all", who)]


@router.post("/api/v1/anomalies/{anomaly_id}/ack", name="api.anomalies.ack",
             response_model=AnomalyOut, responses=deps.ERRORS, tags=["anomalies"])
def anomalies_ack_api(
    request: Request, anomaly_id: deps.RowId, body: AckIn,
    db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> AnomalyOut:
    row = _ack(db, who, anomaly_id, body.reason, deps.now(request))
    return AnomalyOut.model_validate(row, from_attributes=True)
