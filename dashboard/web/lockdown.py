"""Lockdown of the whole site or of chosen doors (nodes deny every tap there)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard import services
from dashboard.auth.service import Principal
from dashboard.models import Door, SiteSettings
from dashboard.web import deps
from dashboard.web.forms import Ident

router = APIRouter()


class LockdownIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lockdown: bool
    doors: list[Ident] = []


class LockdownOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lockdown: bool
    doors: list[str]


def _state(request: Request, db: DbSession) -> LockdownOut:
    row = db.get(SiteSettings, deps.settings(request).site)
    if row is None:
        return LockdownOut(lockdown=False, doors=[])
    return LockdownOut(lockdown=row.lockdown, doors=list(row.lockdown_doors or []))


def _page(request: Request, db: DbSession, error: str = "", status: int = 200) -> Response:
    return deps.render(request, "lockdown.html", {
        "state": _state(request, db), "doors": list(db.scalars(select(Door).order_by(Door.id))),
        "error": error,
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
    lockdown: Annotated[bool, Form()] = False,
    doors: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
        _set(request, db, who, LockdownIn(lockdown=lockdown, doors=doors or []))
    except HTTPException as exc:
        return _page(request, db, str(exc.detail), exc.status_code)
    return RedirectResponse("/lockdown?msg=common.saved", status_code=303)


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
