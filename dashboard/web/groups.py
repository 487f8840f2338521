"""Groups (rights): doors, printers, weekly time windows and public holidays."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Annotated, Any

import holidays as jp_holidays
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import selectinload
from starlette.responses import Response

from dashboard import services
from dashboard.auth import scope
from dashboard.auth.service import Principal
from dashboard.models import Door, Group, Printer
from dashboard.web import deps
from dashboard.web.forms import csv_list

router = APIRouter()


class WindowOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: list[int]
    start: time
    end: time


class GroupOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    on_holidays: bool
    doors: list[str]
    printers: list[str]
    hosts: list[str]
    host_admin: bool
    windows: list[WindowOut]
    members: list[str]
    site: str = ""


def group_out(g: Group, who: Principal | None = None) -> GroupOut:
    """The group as ``who`` sees it: members of other sites are not named to a site's
    account (they are kept when it edits the group)."""
    return GroupOut(
        id=g.id, name=g.name, on_holidays=g.on_holidays, doors=[d.id for d in g.doors],
        printers=[p.id for p in g.printers], hosts=list(g.hosts or []),
        host_admin=bool(g.host_admin),
        windows=[WindowOut(days=list(w.days), start=w.start, end=w.end) for w in g.windows],
        members=[m.id for m in g.members if who is None or scope.sees_site(who, m.site)],
        site=g.site,
    )


def _groups(db: DbSession, who: Principal) -> list[Group]:
    q = select(Group).options(
        selectinload(Group.doors), selectinload(Group.printers), selectinload(Group.windows),
        selectinload(Group.members),
    )
    return list(db.scalars(scope.in_site(q.order_by(Group.id), who, Group.site)))


def upcoming_holidays(today: date, lang: str, days: int = 120) -> list[tuple[date, str]]:
    years = {today.year, (today + timedelta(days=days)).year}
    table = jp_holidays.country_holidays(
        "JP", years=sorted(years), language="ja" if lang == "ja" else "en_US"
    )
    return sorted((d, n) for d, n in table.items() if today <= d <= today + timedelta(days=days))


def _page(request: Request, db: DbSession, error: str = "", status: int = 200) -> Response:
    from dashboard.web.people import site_choices

    today = deps.now(request).astimezone(deps.settings(request).zone).date()
    who = deps.principal(request)
    return deps.render(request, "groups.html", {
        "groups": [group_out(g, who) for g in _groups(db, who)],
        # each group offers its own site's doors and printers (templates filter by g.site)
        "doors": list(db.scalars(scope.in_site(select(Door).order_by(Door.id), who,
                                               Door.site))),
        "printers": list(db.scalars(scope.in_site(select(Printer).order_by(Printer.id), who,
                                                  Printer.site))),
        "sites": site_choices(request, who),
        "holidays": upcoming_holidays(today, deps.translator(request).lang), "error": error,
    }, status)


@router.get("/groups", name="groups.page", include_in_schema=False)
def groups_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    return _page(request, db)


def _apply(request: Request, db: DbSession, fn: Any, *args: Any) -> Response:
    try:
        deps.change(db, fn, *args, now=deps.now(request),
                    within=deps.principal(request).site)
    except HTTPException as exc:
        return _page(request, db, deps.error_text(request, exc.detail), exc.status_code)
    return RedirectResponse("/groups?msg=common.saved", status_code=303)


@router.post("/groups", name="groups.create", include_in_schema=False)
def groups_create(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    id: Annotated[str, Form(max_length=128)],  # noqa: A002
    name: Annotated[str, Form(max_length=200)],
    site: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    return _apply(request, db, services.create_group, who.username,
                  {"id": id, "name": name, "site": site or None})


@router.post("/groups/{group_id}", name="groups.update", include_in_schema=False)
def groups_update(
    request: Request, group_id: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    name: Annotated[str, Form(max_length=200)],
    on_holidays: Annotated[bool, Form()] = False,
    doors: Annotated[list[str] | None, Form()] = None,
    printers: Annotated[list[str] | None, Form()] = None,
    hosts: Annotated[str, Form(max_length=2000)] = "",
    host_admin: Annotated[bool, Form()] = False,
) -> Response:
    patch = {"name": name, "on_holidays": on_holidays, "doors": doors or [],
             "printers": printers or [], "hosts": csv_list(hosts), "host_admin": host_admin}
    return _apply(request, db, services.update_group, who.username, group_id, patch)


def _windows(db: DbSession, group_id: str, who: Principal) -> list[dict[str, Any]]:
    group = db.get(Group, group_id)
    if group is None or not scope.sees_site(who, group.site):
        raise HTTPException(status_code=404, detail=f"no group {group_id!r}")
    return [{"days": list(w.days), "start": w.start, "end": w.end} for w in group.windows]


@router.post("/groups/{group_id}/windows", name="groups.window_add", include_in_schema=False)
def groups_window_add(
    request: Request, group_id: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    start: Annotated[str, Form(max_length=8)],
    end: Annotated[str, Form(max_length=8)],
    days: Annotated[list[int] | None, Form()] = None,
) -> Response:
    try:
        windows = _windows(db, group_id, who)
    except HTTPException as exc:
        return _page(request, db, deps.error_text(request, exc.detail), exc.status_code)
    windows.append({"days": days or [], "start": start, "end": end})
    return _apply(request, db, services.update_group, who.username, group_id,
                  {"windows": windows})


@router.post("/groups/{group_id}/windows/{index}/delete", name="groups.window_delete",
             include_in_schema=False)
def groups_window_delete(
    request: Request, group_id: str, index: int, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> Response:
    try:
        windows = _windows(db, group_id, who)
        if not 0 <= index < len(windows):
            raise HTTPException(status_code=404, detail=f"no window {index}")
    except HTTPException as exc:
        return _page(request, db, deps.error_text(request, exc.detail), exc.status_code)
    del windows[index]
    return _apply(request, db, services.update_group, who.username, group_id,
                  {"windows": windows})


@router.get("/api/v1/groups", name="api.groups.list", response_model=list[GroupOut],
            tags=["groups"])
def groups_api(db: Annotated[DbSession, Depends(deps.db)],
               who: Annotated[Principal, Depends(deps.principal)]) -> list[GroupOut]:
    return [group_out(g, who) for g in _groups(db, who)]
