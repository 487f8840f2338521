"""Personalise a blank card at a chosen reader for a person (see ``dashboard.card_enrol``):
the admin picks the reader, the dashboard sends the node a signed command, the reader waits for
the card, and the page shows the outcome (the card, its type and site key) once the node
reports it. The request and its outcome are audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.auth.service import Principal
from dashboard.card_enrol import WAIT_S, latest_for, request_enrolment
from dashboard.enrolment import EnrolError, ReaderRef
from dashboard.models.card_enrol import OPEN_STATES, CardEnrolment
from dashboard.web import deps
from dashboard.web.enrol import readers_seen
from dashboard.web.people import detail_page, person_or_404

router = APIRouter()
# the catalogue keys of each request state and card type (tests check both languages)
STATE_KEYS = {state: f"personalise.state.{state}" for state in (
    "requested", "sent", "waiting", "personalised", "failed", "timeout", "refused", "expired")}
TYPE_KEYS = {kind: f"personalise.type.{kind}" for kind in ("desfire", "felica_lite_s", "uid")}


def _view(request: Request, db: DbSession, row: CardEnrolment) -> dict[str, Any]:
    t, names = deps.translator(request), deps.names(request)
    labels = {c.key: c.label for c in readers_seen(db, t, names)}
    ref = ReaderRef(row.node, row.reader)
    reader = labels.get(ref.key, f"{names.node(row.node)} · {names.reader(row.reader)}")
    return {
        "id": row.id, "state": row.state, "open": row.state in OPEN_STATES, "reader": reader,
        "status": t(STATE_KEYS.get(row.state, "personalise.state.failed"), reader=reader,
                    seconds=row.wait_s),
        "type": t(TYPE_KEYS[row.card_type]) if row.card_type in TYPE_KEYS else "",
        "requested_at": t.time(row.requested_at), "requested_by": row.requested_by,
        "finished_at": t.time(row.finished_at) if row.finished_at else None,
        "uid": row.uid, "card_type": row.card_type, "key_id": row.key_id,
        "detail": row.detail, "wait_s": row.wait_s,
    }


def person_context(request: Request, db: DbSession, person_id: str) -> dict[str, Any]:
    """The person page's personalisation section (a person section, see ``dashboard.app``)."""
    row = latest_for(db, person_id)
    return {
        "personalise_readers": readers_seen(db, deps.translator(request), deps.names(request)),
        "personalise_last": _view(request, db, row) if row is not None else None,
        "personalise_wait_s": WAIT_S,
    }


@router.post("/people/{person_id}/personalise", name="people.personalise",
             include_in_schema=False)
def personalise(
    request: Request, person_id: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    reader: Annotated[str, Form(min_length=3, max_length=200)],
    label: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    person_or_404(db, person_id)
    try:
        ref = ReaderRef.parse(reader)
        seen = readers_seen(db, deps.translator(request), deps.names(request))
        if ref.key not in {c.key for c in seen}:
            raise EnrolError("choose a reader from the list")
        deps.change(db, request_enrolment, who.username, person_id, ref.node, ref.reader,
                    now=deps.now(request), label=label)
    except EnrolError as exc:
        return detail_page(request, db, person_id, error=str(exc), status=409)
    except HTTPException as exc:
        return detail_page(request, db, person_id, error=str(exc.detail),
                           status=exc.status_code)
    return RedirectResponse(f"/people/{person_id}#personalise", status_code=303)


@router.get("/people/{person_id}/personalise", name="people.personalise_status",
            include_in_schema=False)
def personalise_status(
    request: Request, person_id: str, db: Annotated[DbSession, Depends(deps.db)],
) -> Response:
    """The latest request's state, for the page to follow while the reader waits."""
    person_or_404(db, person_id)
    row = latest_for(db, person_id)
    return JSONResponse(_view(request, db, row) if row is not None else {"state": None})
