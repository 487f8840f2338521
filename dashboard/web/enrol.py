"""Enrol a card by a tap at a chosen reader: open a short window, watch its countdown, see the
card, the reader and the time of the tap, then bind it (or stop). See ``dashboard.enrolment``.

Opening, stopping and binding are audited; the bind's audit record names where and when the
card was presented and what the window ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from controller.policy import normalise_uid
from dashboard import services
from dashboard.audit import append_audit
from dashboard.auth.service import Principal
from dashboard.enrolment import WINDOW_S, EnrolDesk, EnrolError, EnrolWindow, ReaderRef
from dashboard.i18n import Translator
from dashboard.models import Card, Door, DoorAccess
from dashboard.names import Names
from dashboard.web import deps
from dashboard.web.people import detail_page, person_or_404

router = APIRouter()
RECENT_TAPS = 2000


@dataclass(frozen=True)
class ReaderChoice:
    key: str  # node:reader, the form value
    label: str  # what the editor reads: the door's name and side, then node and reader


def readers_seen(db: DbSession, t: Translator, names: Names) -> list[ReaderChoice]:
    """Every reader (node + reader name) in the recent door log, by the name of its door."""
    recent = (select(DoorAccess.node, DoorAccess.reader, DoorAccess.door, DoorAccess.direction)
              .where(DoorAccess.reader.is_not(None)).order_by(DoorAccess.id.desc())
              .limit(RECENT_TAPS))
    doors = {door_id: name for door_id, name in db.execute(select(Door.id, Door.name))}
    seen: dict[str, ReaderChoice] = {}
    for node, reader, door, direction in db.execute(recent):
        ref = ReaderRef(node, reader or "")
        if ref.key in seen:
            continue  # the newest row says which door the reader serves now
        name = names.door(door) if door in doors else None
        label = t("enrol.reader_label", door=name, side=t("dir." + direction),
                  node=names.node(ref.node), reader=names.reader(ref.reader)) if name \
            else f"{names.node(ref.node)} · {names.reader(ref.reader)}"
        seen[ref.key] = ReaderChoice(ref.key, label)
    return sorted(seen.values(), key=lambda c: c.label)


def _desk(request: Request) -> EnrolDesk:
    desk: EnrolDesk = request.app.state.enrol_desk
    return desk


def _view(request: Request, db: DbSession, window: EnrolWindow) -> dict[str, Any]:
    """The window as the page shows it (site time, names, the card's current holder)."""
    t = deps.translator(request)
    now = deps.now(request)
    labels = {c.key: c.label for c in readers_seen(db, t, deps.names(request))}
    view: dict[str, Any] = {
        "id": window.id, "state": window.state(now), "seconds_left": window.seconds_left(now),
        "reader": labels.get(window.reader.key, f"{deps.names(request).node(window.reader.node)} · "
                                                f"{deps.names(request).reader(window.reader.reader)}"),
        "closes_at": t.time(window.closes_at), "ignored": dict(window.ignored),
        "ignored_total": sum(window.ignored.values()), "opened_by": window.opened_by,
    }
    tap = window.candidate
    if tap is not None:
        card = db.get(Card, normalise_uid(tap.uid))
        holder = card.person if card is not None and card.active else None
        view["candidate"] = {"uid": tap.uid, "at": t.time(tap.ts), "node": tap.node,
                             "seq": tap.seq, "holder": holder.name if holder else None}
    return view


def person_context(request: Request, db: DbSession, person_id: str) -> dict[str, Any]:
    """The person page's enrolment section (a person section, see ``dashboard.app``)."""
    who = deps.principal(request)
    window = _desk(request).window(who.username, person_id)
    return {
        "enrol_readers": readers_seen(db, deps.translator(request), deps.names(request)),
        "enrol_window": _view(request, db, window) if window is not None else None,
        "enrol_wait_s": WINDOW_S,
    }


def _audit_close(db: DbSession, who: str, window: EnrolWindow, action: str, now: Any) -> None:
    append_audit(db, actor=who, action=action, target_type="person",
                 target_id=window.person_id, before=None,
                 after={"node": window.reader.node, "reader": window.reader.reader,
                        "opened_at": window.opened_at, "ignored": dict(window.ignored),
                        "candidate": window.candidate.uid if window.candidate else None},
                 now=now)


@router.post("/people/{person_id}/enrol/open", name="people.enrol_open",
             include_in_schema=False)
def enrol_open(
    request: Request, person_id: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    reader: Annotated[str, Form(min_length=3, max_length=200)],
    label: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    person_or_404(db, person_id)
    now = deps.now(request)
    try:
        ref = ReaderRef.parse(reader)
        seen = readers_seen(db, deps.translator(request), deps.names(request))
        if ref.key not in {c.key for c in seen}:
            raise EnrolError("choose a reader from the list")
        window, previous = _desk(request).open(user=who.username, person_id=person_id,
                                               reader=ref, label=label, now=now)
    except EnrolError as exc:
        return detail_page(request, db, person_id, error=str(exc), status=409)
    if previous is not None:
        _audit_close(db, who.username, previous, "card.enrol_close", now)
    append_audit(db, actor=who.username, action="card.enrol_open", target_type="person",
                 target_id=person_id, before=None,
                 after={"node": ref.node, "reader": ref.reader, "until": window.closes_at},
                 now=now)
    db.commit()
    return RedirectResponse(f"/people/{person_id}#enrol", status_code=303)


@router.get("/people/{person_id}/enrol", name="people.enrol_status", include_in_schema=False)
def enrol_status(
    request: Request, person_id: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> JSONResponse:
    """The editor's window for this person, for the page's countdown (polled)."""
    window = _desk(request).window(who.username, person_id)
    if window is None:
        raise HTTPException(status_code=404, detail="no enrolment window for this person")
    now = deps.now(request)
    return JSONResponse({"id": window.id, "state": window.state(now),
                         "seconds_left": window.seconds_left(now),
                         "ignored": sum(window.ignored.values())})


@router.post("/people/{person_id}/enrol/close", name="people.enrol_close",
             include_in_schema=False)
def enrol_close(
    request: Request, person_id: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> Response:
    window = _desk(request).close(who.username, person_id)
    if window is not None:
        _audit_close(db, who.username, window, "card.enrol_close", deps.now(request))
        db.commit()
    return RedirectResponse(f"/people/{person_id}#enrol", status_code=303)


@router.post("/people/{person_id}/enrol/confirm", name="people.enrol_confirm",
             include_in_schema=False)
def enrol_confirm(
    request: Request, person_id: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    window: Annotated[str, Form(min_length=1, max_length=32)],
    uid: Annotated[str, Form(min_length=1, max_length=64)],
) -> Response:
    """Bind the card the editor was shown (same window, same UID, still in time)."""
    person_or_404(db, person_id)
    now = deps.now(request)
    desk = _desk(request)
    try:
        opened, tap = desk.candidate(who.username, person_id, window, uid, now)
    except EnrolError as exc:
        return detail_page(request, db, person_id, error=str(exc), status=409)
    presented = {"node": tap.node, "reader": tap.reader, "seq": tap.seq, "at": tap.ts,
                 "window_opened_at": opened.opened_at, "ignored": dict(opened.ignored)}
    try:
        deps.change(db, services.enrol_card, who.username, person_id, tap.uid,
                    label=opened.label, now=now, presented=presented,
                    credential=tap.credential, key_id=tap.key_id)
    except HTTPException as exc:
        return detail_page(request, db, person_id, error=str(exc.detail),
                            status=exc.status_code)
    desk.close(who.username, person_id)
    return RedirectResponse(f"/people/{person_id}?msg=people.card_bound", status_code=303)
