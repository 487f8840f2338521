"""Display names: what admins call each reader, host (a room PC), node and the site, so that no
page shows their ids. Doors, printers and groups are named on their own pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.auth.service import Principal
from dashboard.models.events import DoorAccess, StoredEvent
from dashboard.models.names import NAME_KINDS
from dashboard.models.nodes import Node
from dashboard.names import set_name
from dashboard.web import deps

router = APIRouter()
RECENT = 5000


def known_ids(request: Request, db: DbSession) -> dict[str, list[str]]:
    """The ids each kind of thing has now (recent readers and hosts, every node, the site)."""
    recent = select(DoorAccess.reader).order_by(DoorAccess.id.desc()).limit(RECENT).subquery()
    readers = {r for r in db.scalars(select(recent.c.reader)) if r}
    events = select(StoredEvent.data).where(StoredEvent.kind.in_(("usb.inserted",
                                                                  "usb.removed"))) \
        .order_by(StoredEvent.id.desc()).limit(RECENT)
    hosts = {d.get("host") for d in db.scalars(events) if isinstance(d, dict) and d.get("host")}
    n = deps.names(request)
    for kind, ident in n.given:
        (readers if kind == "reader" else hosts if kind == "host" else set()).add(ident)
    return {"reader": sorted(readers), "host": sorted(str(h) for h in hosts),
            "node": sorted(db.scalars(select(Node.name))), "site": [deps.settings(request).site]}


def _page(request: Request, db: DbSession, error: str = "", status: int = 200) -> Response:
    return deps.render(request, "names.html", {"ids": known_ids(request, db), "error": error,
                                               "kinds": NAME_KINDS}, status)


@router.get("/names", name="names.page", include_in_schema=False)
def names_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    return _page(request, db)


@router.post("/names", name="names.set", include_in_schema=False)
def names_set(request: Request, db: Annotated[DbSession, Depends(deps.db)],
              who: Annotated[Principal, Depends(deps.principal)],
              kind: Annotated[str, Form(max_length=16)],
              ident: Annotated[str, Form(max_length=128)],
              name: Annotated[str, Form(max_length=128)]) -> Response:
    try:
        set_name(db, who.username, kind, ident, name, deps.now(request))
        db.commit()
        deps.forget_names(request)
    except ValueError:
        db.rollback()
        return _page(request, db, deps.translator(request)("names.error"), 400)
    return RedirectResponse("/names?msg=common.saved", status_code=303)
