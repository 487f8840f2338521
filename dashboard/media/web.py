"""Media ledger pages: list with filters and CSV, register, check out (with a second person's
approval), return, store, wipe, lost/found, dispose, certificates, USB events, per-person media.

``router`` carries these pages and the JSON API of ``dashboard.media.api``; their roles are rows
of ``dashboard.auth.roles.ROLE_MATRIX``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, RedirectResponse
from sqlalchemy import or_, select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.auth import scope
from dashboard.auth.service import Principal
from dashboard.media import api, certificates, service, wipes
from dashboard.media.approval import verify_approver
from dashboard.media.events import UsbEventFilter, usb_events
from dashboard.media.i18n import DESTINATIONS, STATES, MediaText
from dashboard.media.policy import build_usb_policy
from dashboard.models.media import Medium, MediumRecord
from dashboard.models.people import Person
from dashboard.services.base import ServiceError
from dashboard.web import deps
from dashboard.web.forms import csv_list, local_input, parse_local
from usb_guard.usbguard_rules import export_rules


def medium_in_scope(request: Request,
                    db: Annotated[DbSession, Depends(deps.db)]) -> None:
    """Every route naming a medium (``{cn}``): 404 when it is another site's (its custodian's
    home site), the same answer as a medium that does not exist."""
    cn = request.path_params.get("cn")
    if cn is not None:
        scope.require_medium(db, deps.principal(request), cn)


router = APIRouter(dependencies=[Depends(medium_in_scope)])


Db = Annotated[DbSession, Depends(deps.db)]
Who = Annotated[Principal, Depends(deps.principal)]


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    ctx = {"m": MediaText(deps.translator(request)), **ctx}
    if request.query_params.get("msg") == "media.saved":
        ctx.setdefault("flash", ctx["m"]("media.saved"))
    return deps.render(request, name, ctx, status)


def due_default(now: datetime, zone: ZoneInfo) -> datetime:
    """A check-out is due back at the end of the next working day (18:00), not "now"."""
    day = now.astimezone(zone).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(18, 0), zone)


def list_media(db: DbSession, state: str = "", q: str = "",
               who: Principal | None = None) -> list[Medium]:
    if state and state not in STATES:
        raise HTTPException(status_code=422, detail=f"unknown state {state[:16]!r}")
    stmt = select(Medium).order_by(Medium.control_number)
    if who is not None:
        stmt = scope.only_site_media(stmt, who)
    if state:
        stmt = stmt.where(Medium.state == state)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Medium.control_number.ilike(like), Medium.custodian.ilike(like),
                              Medium.holder.ilike(like), Medium.make.ilike(like),
                              Medium.model.ilike(like)))
    return list(db.scalars(stmt))


def _people(db: DbSession, who: Principal) -> list[Person]:
    """Who may hold or keep a medium: the active people (of the account's site)."""
    q = select(Person).where(Person.active.is_(True)).order_by(Person.id)
    return list(db.scalars(scope.in_site(q, who, Person.site)))


def _list_page(request: Request, db: DbSession, state: str = "", q: str = "", error: str = "",
               status: int = 200) -> Response:
    who = deps.principal(request)
    media = list_media(db, state, q, who)
    ctx = {"media": media, "state": state, "q": q, "states": STATES, "error": error,
           "people": _people(db, who), "now": deps.now(request),
           "dues": {d.control_number: d for d in wipes.dues(db)},
           "type_intervals": wipes.intervals(db),
           "query": urlencode({"state": state, "q": q})}
    return _render(request, "media/ledger.html", ctx, status)


@router.get("/media", name="media.page", include_in_schema=False)
def media_page(request: Request, db: Db,
               state: Annotated[str, Query(max_length=16)] = "",
               q: Annotated[str, Query(max_length=64)] = "") -> Response:
    return _list_page(request, db, state, q)


@router.get("/media.csv", name="media.csv", include_in_schema=False)
def media_csv(request: Request, db: Db,
              state: Annotated[str, Query(max_length=16)] = "",
              q: Annotated[str, Query(max_length=64)] = "") -> Response:
    t = deps.translator(request)
    media = list_media(db, state, q, deps.principal(request))
    body = certificates.ledger_csv_bytes(media, t.lang,  # type: ignore[arg-type]
                                         t.zone.key)
    stamp = deps.now(request).astimezone(t.zone).strftime("%Y%m%d")
    return Response(body, media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="media-ledger-{stamp}.csv"'})


@router.get("/media/usbguard-rules.conf", name="media.usbguard_rules", include_in_schema=False)
def media_usbguard(request: Request, db: Db,
                   host: Annotated[str | None, Query(max_length=128)] = None) -> Response:
    text = export_rules(build_usb_policy(db), host or None, deps.now(request))
    return PlainTextResponse(text, headers={
        "content-disposition": 'attachment; filename="rules.conf"'})


@router.post("/media", name="media.register", include_in_schema=False)
def media_register(
    request: Request, db: Db, who: Who,
    vendor_id: Annotated[str, Form(max_length=4)], product_id: Annotated[str, Form(max_length=4)],
    token_digest: Annotated[str, Form(max_length=64)], make: Annotated[str, Form(max_length=200)],
    model: Annotated[str, Form(max_length=200)], custodian: Annotated[str, Form(max_length=128)],
    serial: Annotated[str, Form(max_length=255)] = "",
    descriptors_sha256: Annotated[str, Form(max_length=64)] = "",
    media_type: Annotated[str, Form(max_length=100)] = "USBメモリ",
    capacity: Annotated[str, Form(max_length=50)] = "",
    hosts: Annotated[str, Form(max_length=2000)] = "",
    read_only: Annotated[bool, Form()] = False,
) -> Response:
    data = {"vendor_id": vendor_id.lower(), "product_id": product_id.lower(), "serial": serial,
            "descriptors_sha256": descriptors_sha256.lower() or None,
            "token_digest": token_digest.lower(), "make": make, "model": model,
            "media_type": media_type, "capacity": capacity, "custodian": custodian,
            "hosts": csv_list(hosts), "read_only": read_only}
    try:
        scope.require_person(db, who, custodian, "custodian")
        row = deps.change(db, service.register_medium, who.username, data, now=deps.now(request))
    except HTTPException as exc:
        return _list_page(request, db, error=str(exc.detail), status=exc.status_code)
    return RedirectResponse(f"/media/{quote(row.control_number)}?msg=media.saved",
                            status_code=303)


def _detail(request: Request, db: DbSession, cn: str, error: str = "",
            status: int = 200) -> Response:
    row = db.get(Medium, cn)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no medium {cn!r}")
    records = db.scalars(select(MediumRecord).where(MediumRecord.control_number == cn)
                         .order_by(MediumRecord.id.desc())).all()
    zone = deps.translator(request).zone
    ctx = {"r": row, "records": records, "error": error,
           "people": _people(db, deps.principal(request)),
           "destinations": DESTINATIONS, "has_certificate": certificates.has_certificate(row),
           "wipe_due": wipes.due_of(row, wipes.intervals(db)),
           "now": deps.now(request), "due_default": local_input(due_default(deps.now(request),
                                                                             zone), zone)}
    return _render(request, "media/detail.html", ctx, status)


@router.get("/media/{cn}", name="media.detail", include_in_schema=False)
def media_detail(request: Request, cn: str, db: Db) -> Response:
    return _detail(request, db, cn)


def _act(request: Request, db: DbSession, cn: str, fn: Callable[[], Any]) -> Response:
    if db.get(Medium, cn) is None:
        raise HTTPException(status_code=404, detail=f"no medium {cn!r}")
    try:
        fn()
    except HTTPException as exc:
        return _detail(request, db, cn, str(exc.detail), exc.status_code)
    return RedirectResponse(f"/media/{quote(cn)}?msg=media.saved", status_code=303)


@router.post("/media/{cn}/check-out", name="media.check_out", include_in_schema=False)
def media_check_out(
    request: Request, cn: str, db: Db, who: Who,
    holder: Annotated[str, Form(max_length=128)], purpose: Annotated[str, Form(max_length=200)],
    due_back: Annotated[str, Form(max_length=32)], approver: Annotated[str, Form(max_length=64)],
    approver_password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    def run() -> None:
        now = deps.now(request)
        scope.require_person(db, who, holder, "holder")
        due = parse_local(due_back, deps.translator(request).zone)
        try:
            approved = verify_approver(
                request.app.state.auth, requester=who.username, approver=approver,
                password=approver_password, ip=request.client.host if request.client else "",
                now=now)
        except ServiceError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        deps.change(db, service.check_out, who.username, cn,
                    {"holder": holder, "purpose": purpose, "due_back": due,
                     "approved_by": approved}, now=now)

    return _act(request, db, cn, run)


def _simple(fn: Callable[..., Any]) -> Callable[..., Response]:
    def endpoint(request: Request, cn: str, db: Db, who: Who,
                 note: Annotated[str, Form(max_length=200)] = "") -> Response:
        return _act(request, db, cn, lambda: deps.change(
            db, fn, who.username, cn, {"note": note}, now=deps.now(request)))
    return endpoint


router.add_api_route("/media/{cn}/return", _simple(service.return_medium), methods=["POST"],
                     name="media.return", include_in_schema=False)
router.add_api_route("/media/{cn}/lost", _simple(service.mark_lost), methods=["POST"],
                     name="media.lost", include_in_schema=False)
router.add_api_route("/media/{cn}/found", _simple(service.mark_found), methods=["POST"],
                     name="media.found", include_in_schema=False)


@router.post("/media/{cn}/store", name="media.store", include_in_schema=False)
def media_store(request: Request, cn: str, db: Db, who: Who) -> Response:
    return _act(request, db, cn, lambda: deps.change(
        db, service.store_medium, who.username, cn, now=deps.now(request)))


@router.post("/media/{cn}/wipe", name="media.wipe", include_in_schema=False)
def media_wipe(
    request: Request, cn: str, db: Db, who: Who,
    method: Annotated[str, Form(max_length=16)], technique: Annotated[str, Form(max_length=200)],
    tool: Annotated[str, Form(max_length=200)], verifier: Annotated[str, Form(max_length=200)],
    verification: Annotated[str, Form(max_length=200)],
) -> Response:
    data = {"method": method, "technique": technique, "tool": tool, "verifier": verifier,
            "verification": verification}
    return _act(request, db, cn, lambda: deps.change(
        db, service.wipe_medium, who.username, cn, data, now=deps.now(request)))


@router.post("/media/{cn}/dispose", name="media.dispose", include_in_schema=False)
def media_dispose(
    request: Request, cn: str, db: Db, who: Who,
    method: Annotated[str, Form(max_length=16)],
    certificate_number: Annotated[str, Form(max_length=64)],
    verifier: Annotated[str, Form(max_length=200)],
    destination: Annotated[str, Form(max_length=32)] = "destroyed",
) -> Response:
    data = {"method": method, "certificate_number": certificate_number, "verifier": verifier,
            "destination": destination}
    return _act(request, db, cn, lambda: deps.change(
        db, service.dispose_medium, who.username, cn, data, now=deps.now(request)))


def _days(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise HTTPException(status_code=422, detail="interval_days: a whole number of days")
    return int(text)


@router.post("/media/{cn}/wipe-interval", name="media.wipe_interval", include_in_schema=False)
def media_wipe_interval(request: Request, cn: str, db: Db, who: Who,
                        interval_days: Annotated[str, Form(max_length=8)] = "") -> Response:
    return _act(request, db, cn, lambda: deps.change(
        db, wipes.set_interval, who.username, cn, _days(interval_days), now=deps.now(request)))


@router.post("/media/wipe-intervals", name="media.type_wipe_interval", include_in_schema=False)
def media_type_wipe_interval(request: Request, db: Db, who: Who,
                             media_type: Annotated[str, Form(max_length=100)],
                             interval_days: Annotated[str, Form(max_length=8)] = "",
                             ) -> Response:
    try:
        deps.change(db, wipes.set_type_interval, who.username, media_type,
                    _days(interval_days), now=deps.now(request))
    except HTTPException as exc:
        return _list_page(request, db, error=str(exc.detail), status=exc.status_code)
    return RedirectResponse("/media?msg=media.saved", status_code=303)


@router.post("/media/{cn}/settings", name="media.reconfigure", include_in_schema=False)
def media_reconfigure(
    request: Request, cn: str, db: Db, who: Who,
    hosts: Annotated[str, Form(max_length=2000)] = "",
    read_only: Annotated[bool, Form()] = False,
) -> Response:
    data = {"hosts": csv_list(hosts), "read_only": read_only}
    return _act(request, db, cn, lambda: deps.change(
        db, service.reconfigure_medium, who.username, cn, data, now=deps.now(request)))


def _certificate(request: Request, db: DbSession, cn: str, lang: str):  # type: ignore[no-untyped-def]  # noqa: E501
    from dashboard.reports.clients import office_profile
    from dashboard.reports.names import Names

    row = db.get(Medium, cn)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no medium {cn!r}")
    names = Names(db)
    org = office_profile(db).name or deps.settings(request).site
    try:
        return certificates.certificate_of(row, organization=org, now=deps.now(request),
                                           zone=deps.settings(request).zone, name=names.user,
                                           lang="en" if lang == "en" else "ja")
    except ServiceError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc


@router.get("/media/{cn}/certificate.pdf", name="media.certificate_pdf",
            include_in_schema=False)
def media_certificate_pdf(request: Request, cn: str, db: Db,
                          lang: Annotated[Literal["ja", "en"], Query()] = "ja") -> Response:
    cert = _certificate(request, db, cn, lang)
    try:
        body = certificates.pdf(cert, lang, deps.settings(request).timezone)
    except ServiceError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    return Response(body, media_type="application/pdf", headers={
        "content-disposition": f'attachment; filename="certificate-{quote(cn)}-{lang}.pdf"'})


@router.get("/media/{cn}/certificate.csv", name="media.certificate_csv",
            include_in_schema=False)
def media_certificate_csv(request: Request, cn: str, db: Db,
                          lang: Annotated[Literal["ja", "en"], Query()] = "ja") -> Response:
    cert = _certificate(request, db, cn, lang)
    body = certificates.csv_bytes(cert, lang, deps.settings(request).timezone)
    return Response(body, media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="certificate-{quote(cn)}-{lang}.csv"'})


@router.get("/usb-events", name="usb_events.page", include_in_schema=False)
def usb_events_page(
    request: Request, db: Db,
    start: Annotated[str, Query(max_length=32)] = "",
    end: Annotated[str, Query(max_length=32)] = "",
    host: Annotated[str, Query(max_length=128)] = "",
    verdict: Annotated[str, Query(max_length=32)] = "",
    control_number: Annotated[str, Query(max_length=32)] = "",
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    zone = deps.translator(request).zone
    f = UsbEventFilter(start=parse_local(start, zone), end=parse_local(end, zone),
                       host=host or None, verdict=verdict or None,
                       control_numbers=frozenset({control_number}) if control_number else None,
                       before_id=before_id)
    query = urlencode({"start": start, "end": end, "host": host, "verdict": verdict,
                       "control_number": control_number})
    return _render(request, "media/usb_events.html", {
        "page": usb_events(db, f), "f": f, "start": start, "end": end,
        "control_number": control_number, "query": query})


@router.get("/people/{person_id}/media", name="media.person", include_in_schema=False)
def media_person(request: Request, person_id: str, db: Db) -> Response:
    person = db.get(Person, person_id)
    if person is None:
        raise HTTPException(status_code=404, detail=f"no person {person_id!r}")
    held = list(db.scalars(select(Medium).where(or_(
        Medium.custodian == person_id,
        (Medium.holder == person_id) & (Medium.state == "checked_out"))
    ).order_by(Medium.control_number)))
    history = db.scalars(select(MediumRecord).where(MediumRecord.holder == person_id)
                         .order_by(MediumRecord.id.desc()).limit(500)).all()
    numbers = frozenset(m.control_number for m in held) | {r.control_number for r in history}
    events = usb_events(db, UsbEventFilter(control_numbers=frozenset(numbers)), limit=50)
    return _render(request, "media/person.html", {
        "person": person, "held": held, "history": history, "events": events,
        "now": deps.now(request)})


router.routes.extend(api.router.routes)  # flat, as the app factory wants them
