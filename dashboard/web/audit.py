"""The audit log of admin actions (read only), with an on-demand check of its hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.audit import verify_audit
from dashboard.labels.states import AUDIT_TARGETS
from dashboard.models import AuditRecord
from dashboard.web import deps
from dashboard.web.audit_view import changes, target_name

router = APIRouter()
PAGE = 100


class AuditOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    before: Any
    after: Any
    hash: str


class AuditPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[AuditOut]
    next_before_seq: int | None


def _page(db: DbSession, before_seq: int | None, target_type: str | None) -> AuditPage:
    q = select(AuditRecord)
    if before_seq is not None:
        q = q.where(AuditRecord.seq < before_seq)
    if target_type:
        q = q.where(AuditRecord.target_type == target_type)
    rows = list(db.scalars(q.order_by(AuditRecord.seq.desc()).limit(PAGE)))
    return AuditPage(
        items=[AuditOut.model_validate(r, from_attributes=True) for r in rows],
        next_before_seq=rows[-1].seq if len(rows) == PAGE else None,
    )


@router.get("/audit", name="audit.page", include_in_schema=False)
def audit_page(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    before_seq: Annotated[int | None, Query(ge=1)] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    verify: bool = False,
) -> Response:
    report = verify_audit(db) if verify else None
    t, n = deps.translator(request), deps.names(request)
    page = _page(db, before_seq, target_type)
    rows = [(r, target_name(n, r.target_type, r.target_id),
             changes(r.before, r.after, r.target_type, t, n)) for r in page.items]
    return deps.render(request, "audit.html", {
        "page": page, "rows": rows, "report": report, "target_type": target_type or "",
        "targets": sorted(AUDIT_TARGETS),
    })


@router.get("/api/v1/audit", name="api.audit.list", response_model=AuditPage, tags=["audit"])
def audit_api(
    db: Annotated[DbSession, Depends(deps.db)],
    before_seq: Annotated[int | None, Query(ge=1)] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
) -> AuditPage:
    return _page(db, before_seq, target_type)
