"""Lockdown of the whole site or of chosen doors (nodes deny every tap there)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard import services
from dashboard.auth.service import Principal
from dashboard.models import Door, SiteSettings
from dashboard.web import deps, queries
from dashboard.web.forms import Ident

router = APIRouter()


class LockdownIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lockdown: bool
    doors: list[Ident] = []
    reason: str | None = Field(default=None, max_length=2000,
                               description="required to start a lockdown")


class LockdownOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lockdown: bool
    doors: list[str]
    reason: str | None = None
    since: datetime | None = None
    by: str | None = None


def _state(request: Request, db: DbSession) -> LockdownOut:
    row = db.get(SiteSettings, deps.settings(request).site)
    if row is None:
        return LockdownOut(lockdown=False, doors=[])
    return LockdownOut(lockdown=row.lockdown, doors=list(row.lockdown_doors or []),
                       reason=row.lockdown_reason, since=row.lockdown_since,
                       by=row.lockdown_by)


def _page(request: Request, db: DbSession, error: str = "", status: int = 200,
          typed: dict[str, Any] | None = None) -> Response:
    return deps.render(request, "lockdown.html", {
        "state": _state(request, db), "doors": list(db.scalars(select(Door).order_by(Door.id))),
        "error": error, "typed": typed or {}, "inside": queries.in_room(db),
    }, status)


@router.get("/lockdown", name="lockdown.page", include_in_schema=False)
def lockdown_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    return _page(request, db)


def _set(request: Request, db: DbSession, who: Principal, body: LockdownIn) -> LockdownOut:
    deps.change(db, services.set_lockdown, who.username, deps.settings(request).site,
                body.model_dump(), now=deps.now(request))
    return _state(request, db)


@router.post("/lockdown", name="lockdown.set", include_in_schema=False)
def lockdown_set(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    scope: Annotated[str, Form(max_length=8)] = "",
    lockdown: Annotated[bool, Form()] = False,
    doors: Annotated[list[str] | None, Form()] = None,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """``scope``: "site" (every door), "doors" (the ticked ones) or "end"; without it the
    checkbox form of the API's shape (``lockdown`` and ``doors``)."""
    if scope == "end":
        body = LockdownIn(lockdown=False, doors=[], reason=reason or None)
    elif scope == "site":
        body = LockdownIn(lockdown=True, doors=[], reason=reason or None)
    else:
        body = LockdownIn(lockdown=lockdown, doors=doors or [], reason=reason or None)
    try:
        _set(request, db, who, body)
    except HTTPException as exc:
        t = deps.translator(request)
        text = t("lockdown.error.reason") if "reason" in str(exc.detail) else \
            t("lockdown.error.doors")
        return _page(request, db, text, exc.status_code,
                     {"reason": reason, "doors": doors or [], "scope": scope})
    return RedirectResponse("/lockdown?msg=common.saved", status_code=303)


@router.get("/lockdown/inside", name="lockdown.inside", include_in_schema=False)
def lockdown_inside(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    """Who is inside now, to print for an evacuation."""
    return deps.render(request, "lockdown_inside.html", {
        "state": _state(request, db), "inside": queries.in_room(db), "now": deps.now(request)})


@router.get("/api/v1/lockdown", name="api.lockdown.get", response_model=LockdownOut,
            tags=["lockdown"])
def lockdown_api(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> LockdownOut:
    return _state(request, db)


@router.put("/api/v1/lockdown", name="api.lockdown.set", response_model=LockdownOut,
            responses=deps.ERRORS, tags=["lockdown"])
def lockdown_set_api(
    request: Request, body: LockdownIn, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> LockdownOut:
    return _set(request, db, who, body)
