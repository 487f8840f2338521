"""The pages behind the reports: client companies and their 事業所名, the issuing office's
profile, deletion certificates from the records that prove them, the handling-status register,
and the incident classification of review items. Mounted by ``dashboard.reports.web``."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.auth.service import Principal
from dashboard.models.correlation import DeletionCertificate
from dashboard.models.people import Group, Person
from dashboard.models.reports import MEASURE_KINDS
from dashboard.reports import certificates as certs
from dashboard.reports import clients as cl
from dashboard.reports import register as reg
from dashboard.reports.data import ReportError
from dashboard.reports.dates import previous_month
from dashboard.reports.incidents import classify, month_reviews
from dashboard.reports.inputs import parse
from dashboard.reports.labels import kind_label, label
from dashboard.reports.monthly import MEDIA_TYPES, stored_file
from dashboard.reports.ui import ui
from dashboard.web import deps

router = APIRouter()
Db = Annotated[DbSession, Depends(deps.db)]
Who = Annotated[Principal, Depends(deps.principal)]
Text = Annotated[str, Form(max_length=2000)]


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    lang = deps.translator(request).lang
    return deps.render(request, name, {"u": lambda k, **f: ui(lang, k, **f), "lang": lang,
                                       "L": lambda k, **f: label(k, lang, **f), **ctx}, status)


def attachment(content: bytes, fmt: str, name: str) -> Response:
    """A document to download, never cached."""
    return Response(content, media_type=MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store"})


def _back(path: str, msg: str = "") -> Response:
    return RedirectResponse(path + (f"?done={quote(msg)}" if msg else ""), status_code=303)


def _done(request: Request) -> str:
    return request.query_params.get("done", "")[:64]


# -- clients and their office names --------------------------------------------------------


def _clients_page(request: Request, db: DbSession, error: str = "", status: int = 200
                  ) -> Response:
    return _render(request, "reports/clients.html", {
        "clients": cl.clients(db), "offices": cl.office_map(db),
        "unmapped": cl.unmapped_offices(db), "error": error, "done": _done(request)}, status)


@router.get("/reports/clients", name="reports.clients", include_in_schema=False)
def clients_page(request: Request, db: Db) -> Response:
    return _clients_page(request, db)


@router.post("/reports/clients", name="reports.client_save", include_in_schema=False)
def client_save(
    request: Request, db: Db, who: Who, name: Annotated[str, Form(max_length=255)],
    address: Text = "", contact: Text = "", phone: Annotated[str, Form(max_length=64)] = "",
    reporting_day: Annotated[int, Form(ge=1, le=28)] = 10, client_id: Annotated[
        str, Form(max_length=16)] = "", active: Annotated[bool, Form()] = False,
    new: Annotated[bool, Form()] = False,
) -> Response:
    try:
        data = parse(cl.ClientIn, {"name": name, "address": address, "contact": contact,
                                      "phone": phone, "reporting_day": reporting_day,
                                      "active": active or new})
        cl.save_client(db, data, actor=who.username, now=deps.now(request),
                       client_id=int(client_id) if client_id.isdigit() else None)
        db.commit()
    except ReportError as exc:
        db.rollback()
        return _clients_page(request, db, str(exc), 400)
    return _back("/reports/clients", "saved")


@router.post("/reports/offices", name="reports.map_office", include_in_schema=False)
def map_office(request: Request, db: Db, who: Who,
               office: Annotated[str, Form(max_length=255)],
               client_id: Annotated[str, Form(max_length=16)] = "") -> Response:
    try:
        cl.map_office(db, office, int(client_id) if client_id.isdigit() else None,
                      actor=who.username, now=deps.now(request))
        db.commit()
    except ReportError as exc:
        db.rollback()
        return _clients_page(request, db, str(exc), 400)
    return _back("/reports/clients", "saved")


# -- the issuing office ----------------------------------------------------------------------


@router.get("/reports/office", name="reports.office", include_in_schema=False)
def office_page(request: Request, db: Db) -> Response:
    return _office_page(request, db)


def _office_page(request: Request, db: DbSession, error: str = "", status: int = 200
                 ) -> Response:
    p = cl.office_profile(db)
    return _render(request, "reports/office.html", {
        "p": p, "measures": cl.measures_of(p), "kinds": MEASURE_KINDS, "error": error,
        "done": _done(request)}, status)


@router.post("/reports/office", name="reports.office_save", include_in_schema=False)
def office_save(
    request: Request, db: Db, who: Who, name: Annotated[str, Form(max_length=255)],
    address: Text = "", phone: Annotated[str, Form(max_length=64)] = "",
    representative: Text = "", date_style: Annotated[str, Form(max_length=8)] = "era",
    subcontracting: Text = "無し", organizational: Text = "", human: Text = "",
    physical: Text = "", technical: Text = "",
) -> Response:
    lines = {k: v.splitlines() for k, v in (("organizational", organizational),
                                            ("human", human), ("physical", physical),
                                            ("technical", technical))}
    try:
        data = parse(cl.OfficeIn, {"name": name, "address": address, "phone": phone,
                                      "representative": representative,
                                      "date_style": date_style,
                                      "subcontracting": subcontracting, **lines})
        cl.save_office(db, data, actor=who.username, now=deps.now(request))
        db.commit()
    except ReportError as exc:
        db.rollback()
        return _office_page(request, db, str(exc), 400)
    return _back("/reports/office", "saved")


# -- deletion certificates -------------------------------------------------------------------


def _people(db: DbSession) -> list[Person]:
    return list(db.scalars(select(Person).where(Person.active.is_(True)).order_by(Person.id)))


def _certs_page(request: Request, db: DbSession, error: str = "", status: int = 200
                ) -> Response:
    zone = deps.settings(request).zone
    issued = db.scalars(select(DeletionCertificate).order_by(DeletionCertificate.id.desc())
                        .limit(100)).all()
    return _render(request, "reports/certificates.html", {
        "candidates": certs.candidates(db, zone, deps.now(request)),
        "clients": cl.clients(db, active_only=True), "people": _people(db), "issued": issued,
        "error": error, "done": _done(request)}, status)


@router.get("/reports/certificates", name="reports.certificates", include_in_schema=False)
def certificates_page(request: Request, db: Db) -> Response:
    return _certs_page(request, db)


@router.post("/reports/certificates", name="reports.certificate_issue",
             include_in_schema=False)
def certificate_issue(
    request: Request, db: Db, who: Who, source: Annotated[str, Form(max_length=300)],
    client_id: Annotated[str, Form(max_length=16)], person_id: Annotated[str, Form(
        max_length=128)], reason: Annotated[str, Form(max_length=500)],
    subject: Annotated[str, Form(max_length=500)],
    lang: Annotated[str, Form(pattern="^(ja|en)$")] = "ja",
) -> Response:
    kind, _, ref = source.partition("|")
    try:
        data = certs.parse_certificate({
            "kind": kind, "ref": ref, "client_id": client_id if client_id.isdigit() else None,
            "person_id": person_id, "reason": reason, "subject": subject, "lang": lang})
        row, _ = certs.issue_certificate(db, data, zone=deps.settings(request).zone,
                                         now=deps.now(request), actor=who.username)
        db.commit()
    except ReportError as exc:
        db.rollback()
        return _certs_page(request, db, str(exc), 400)
    return _back("/reports/certificates", row.number)


@router.get("/reports/certificates/{cid}/file/{fmt}", name="reports.certificate_file",
            include_in_schema=False)
def certificate_file(cid: int, fmt: str, db: Db) -> Response:
    row = db.get(DeletionCertificate, cid)
    if row is None or fmt not in ("pdf", "csv"):
        raise HTTPException(status_code=404, detail="no such certificate file")
    try:
        content = stored_file(db, fmt=fmt, certificate_id=cid)
    except ReportError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return attachment(content, fmt, f"deletion-certificate-{row.number}.{fmt}")


# -- the handling-status register ------------------------------------------------------------


@router.get("/reports/register", name="reports.register", include_in_schema=False)
def register_page(request: Request, db: Db) -> Response:
    return _register_page(request, db)


def _register_page(request: Request, db: DbSession, error: str = "", status: int = 200
                   ) -> Response:
    lang = deps.translator(request).lang
    return _render(request, "reports/register.html", {
        "entries": [(e, reg.cells(e, "en" if lang == "en" else "ja"))
                    for e in reg.entries(db)],
        "columns": reg.COLUMNS, "clients": cl.clients(db), "people": _people(db),
        "groups": list(db.scalars(select(Group).order_by(Group.id))), "error": error,
        "done": _done(request)}, status)


@router.post("/reports/register", name="reports.register_save", include_in_schema=False)
def register_save(
    request: Request, db: Db, who: Who, kind: Annotated[str, Form(max_length=255)],
    name: Annotated[str, Form(max_length=255)], client_id: Annotated[str, Form(
        max_length=16)] = "", responsible_person_id: Annotated[str, Form(max_length=128)] = "",
    department: Text = "", purpose: Text = "", retention: Text = "",
    deletion_status: Text = "", access_groups: Annotated[list[str] | None, Form()] = None,
    file_id: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    try:
        data = reg.parse({
            "kind": kind, "name": name,
            "client_id": int(client_id) if client_id.isdigit() else None,
            "responsible_person_id": responsible_person_id or None, "department": department,
            "purpose": purpose, "retention": retention, "deletion_status": deletion_status,
            "access_groups": access_groups or []})
        reg.save(db, data, actor=who.username, now=deps.now(request),
                 file_id=int(file_id) if file_id.isdigit() else None)
        db.commit()
    except ReportError as exc:
        db.rollback()
        return _register_page(request, db, str(exc), 400)
    return _back("/reports/register", "saved")


@router.get("/reports/register.pdf", name="reports.register_pdf", include_in_schema=False)
def register_pdf(request: Request, db: Db, lang: str = "ja") -> Response:
    body = reg.register_pdf(db, "en" if lang == "en" else "ja", deps.settings(request).zone,
                            deps.now(request))
    return attachment(body, "pdf", "personal-data-file-register.pdf")


# -- incident classification of review items -------------------------------------------------


@router.get("/reports/reviews", name="reports.reviews", include_in_schema=False)
def reviews_page(request: Request, db: Db, month: str = "") -> Response:
    return _reviews_page(request, db, month[:7])


def _reviews_page(request: Request, db: DbSession, month: str, error: str = "",
                  status: int = 200) -> Response:
    zone = deps.settings(request).zone
    month = month or previous_month(deps.now(request), zone)
    lang = deps.translator(request).lang
    try:
        rows = month_reviews(db, month, zone)
    except ReportError as exc:
        rows, error, status = [], str(exc), 400
    return _render(request, "reports/reviews.html", {
        "month": month, "rows": rows, "kind": lambda k: kind_label(k, lang), "error": error,
        "done": _done(request)}, status)


@router.post("/reports/reviews/{aid}", name="reports.classify", include_in_schema=False)
def review_classify(request: Request, aid: deps.RowId, db: Db, who: Who,
                    incident: Annotated[str, Form(pattern="^(yes|no)$")],
                    note: Annotated[str, Form(max_length=1000)] = "",
                    month: Annotated[str, Form(max_length=7)] = "") -> Response:
    try:
        classify(db, aid, incident == "yes", note, actor=who.username, now=deps.now(request))
        db.commit()
    except ReportError as exc:
        db.rollback()
        return _reviews_page(request, db, month, str(exc), 400)
    return RedirectResponse(f"/reports/reviews?month={quote(month)}&done=saved",
                            status_code=303)
