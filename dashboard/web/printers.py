"""Printers whose release is controlled by card (rights are given through groups)."""

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
from dashboard.models import Printer
from dashboard.web import deps

router = APIRouter()


class PrinterOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    site: str = ""


def _printers(db: DbSession, who: Principal) -> list[PrinterOut]:
    q = scope.in_site(select(Printer).order_by(Printer.id), who, Printer.site)
    return [PrinterOut(id=p.id, name=p.name, site=p.site) for p in db.scalars(q)]


def _page(request: Request, db: DbSession, error: str = "", status: int = 200) -> Response:
    from dashboard.web.people import site_choices

    who = deps.principal(request)
    return deps.render(request, "printers.html", {
        "printers": _printers(db, who), "error": error, "sites": site_choices(request, who)},
        status)


@router.get("/printers", name="printers.page", include_in_schema=False)
def printers_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    return _page(request, db)


@router.post("/printers", name="printers.create", include_in_schema=False)
def printers_create(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    id: Annotated[str, Form(max_length=128)],  # noqa: A002
    name: Annotated[str, Form(max_length=200)],
    site: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        deps.change(db, services.create_printer, who.username,
                    {"id": id, "name": name, "site": site or None}, now=deps.now(request),
                    within=who.site)
    except HTTPException as exc:
        return _page(request, db, deps.error_text(request, exc.detail), exc.status_code)
    return RedirectResponse("/printers?msg=common.saved", status_code=303)


@router.post("/printers/{printer_id}/delete", name="printers.delete", include_in_schema=False)
def printers_delete(
    request: Request, printer_id: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> Response:
    try:
        deps.change(db, services.delete_printer, who.username, printer_id, now=deps.now(request),
                    within=who.site)
    except HTTPException as exc:
        return _page(request, db, deps.error_text(request, exc.detail), exc.status_code)
    return RedirectResponse("/printers?msg=common.saved", status_code=303)


@router.get("/api/v1/printers", name="api.printers.list", response_model=list[PrinterOut],
            tags=["printers"])
def printers_api(db: Annotated[DbSession, Depends(deps.db)],
                 who: Annotated[Principal, Depends(deps.principal)]) -> list[PrinterOut]:
    return _printers(db, who)
