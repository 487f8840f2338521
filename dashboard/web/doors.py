"""Doors: names, two-person rule and anti-passback (changes go through the audited service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard import services
from dashboard.auth import scope
from dashboard.auth.service import Principal
from dashboard.models import Door
from dashboard.web import deps

router = APIRouter()


class DoorOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    two_person: bool
    two_person_window_s: int
    anti_passback: bool
    require_verified: bool = False
    site: str = ""


def _doors(db: DbSession, who: Principal) -> list[DoorOut]:
    q = scope.in_site(select(Door).order_by(Door.id), who, Door.site)
    return [DoorOut.model_validate(d, from_attributes=True) for d in db.scalars(q)]


def _page(request: Request, db: DbSession, error: str = "", status: int = 200) -> Response:
    from dashboard.web.people import site_choices

    who = deps.principal(request)
    return deps.render(request, "doors.html", {
        "doors": _doors(db, who), "error": error, "sites": site_choices(request, who)}, status)


@router.get("/doors", name="doors.page", include_in_schema=False)
def doors_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    return _page(request, db)


@router.post("/doors", name="doors.create", include_in_schema=False)
def doors_create(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    id: Annotated[str, Form(max_length=128)],  # noqa: A002
    name: Annotated[str, Form(max_length=200)],
    site: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        deps.change(db, services.create_door, who.username,
                    {"id": id, "name": name, "site": site or None}, now=deps.now(request),
                    within=who.site)
    except HTTPException as exc:
        return _page(request, db, deps.error_text(request, exc.detail), exc.status_code)
    return RedirectResponse("/doors?msg=common.saved", status_code=303)


@router.post("/doors/{door_id}", name="doors.update", include_in_schema=False)
def doors_update(
    request: Request, door_id: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    name: Annotated[str, Form(max_length=200)],
    two_person_window_s: Annotated[int, Form(ge=1, le=600)] = 30,
    two_person: Annotated[bool, Form()] = False,
    anti_passback: Annotated[bool, Form()] = False,
    require_verified: Annotated[bool, Form()] = False,
) -> Response:
    patch = {"name": name, "two_person": two_person, "two_person_window_s": two_person_window_s,
             "anti_passback": anti_passback, "require_verified": require_verified}
    try:
        deps.change(db, services.update_door, who.username, door_id, patch,
                    now=deps.now(request), within=who.site)
    except HTTPException as exc:
        return _page(request, db, deps.error_text(request, exc.detail), exc.status_code)
    return RedirectResponse("/doors?msg=common.saved", status_code=303)


@router.get("/api/v1/doors", name="api.doors.list", response_model=list[DoorOut], tags=["doors"])
def doors_api(db: Annotated[DbSession, Depends(deps.db)],
              who: Annotated[Principal, Depends(deps.principal)]) -> list[DoorOut]:
    return _doors(db, who)
