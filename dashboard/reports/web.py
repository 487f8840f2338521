"""The reports page: issue the monthly handling report for a client chosen from the list (or the
internal all-clients report), download an issue again (as issued: PDF, CSV, XLSX), supersede it
with a corrected issue that states why, and verify a file someone hands back.

``router`` is one of ``dashboard.app.routers()`` and carries the client, office, certificate,
register and review pages of ``dashboard.reports.web_admin`` too; its roles are rows of
``dashboard.auth.roles.ROLE_MATRIX``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.auth import scope
from dashboard.auth.service import Principal
from dashboard.models.correlation import IssuedReport
from dashboard.reports import web_admin
from dashboard.reports.clients import clients
from dashboard.reports.data import ReportError
from dashboard.reports.dates import previous_month
from dashboard.reports.monthly import FORMATS, issue, stored_file
from dashboard.reports.ui import ui
from dashboard.reports.verify import MAX_BYTES, Verified, verify_file
from dashboard.web import deps

router = APIRouter()
Db = Annotated[DbSession, Depends(deps.db)]
Who = Annotated[Principal, Depends(deps.principal)]


def render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    lang = deps.translator(request).lang
    return deps.render(request, name, {"u": lambda k, **f: ui(lang, k, **f), **ctx}, status)


def _page(request: Request, db: DbSession, *, error: str = "", flash: str = "",
          verified: Verified | None = None, status: int = 200) -> Response:
    who = deps.principal(request)
    mine = scope.client_filter(who, IssuedReport.client_id)  # a client's auditor: its own
    q = select(IssuedReport) if mine is None else select(IssuedReport).where(mine)
    issued = db.scalars(q.order_by(IssuedReport.id.desc()).limit(100)).all()
    listed = clients(db, active_only=True)
    if who.scoped:
        listed = [c for c in listed if c.id == who.client_id]
    replaced = {r.supersedes: r for r in issued if r.supersedes is not None}
    by_id = {r.id: r for r in issued}
    return render(request, "reports/page.html", {
        "issued": issued, "replaced": replaced, "by_id": by_id, "error": error, "flash": flash,
        "verified": verified, "clients": listed, "formats": FORMATS,
        "month": previous_month(deps.now(request), deps.settings(request).zone)}, status)


@router.get("/reports", name="reports.page", include_in_schema=False)
def reports_page(request: Request, db: Db) -> Response:
    flash = ""
    number = request.query_params.get("issued", "")
    if number and len(number) < 32:
        flash = ui(deps.translator(request).lang, "issued_flash", n=number)
    return _page(request, db, flash=flash)


@router.post("/reports/monthly", name="reports.monthly", include_in_schema=False)
def reports_monthly(
    request: Request, db: Db, who: Who, month: Annotated[str, Form(max_length=7)],
    client: Annotated[str, Form(max_length=16)] = "",
    lang: Annotated[str, Form(pattern="^(ja|en)$")] = "ja",
) -> Response:
    try:
        cid = int(client) if client.strip() else None
    except ValueError:
        return _page(request, db, error="client: choose one from the list", status=422)
    try:
        out = issue(db, month=month, client_id=cid, lang=lang,
                    zone=deps.settings(request).zone, now=deps.now(request), actor=who.username)
        db.commit()
    except ReportError as exc:
        db.rollback()
        return _page(request, db, error=str(exc), status=400)
    return RedirectResponse(f"/reports?issued={quote(out.number)}", status_code=303)


@router.get("/reports/{rid}/file/{fmt}", name="reports.download", include_in_schema=False)
def reports_download(rid: deps.RowId, fmt: str, db: Db, who: Who) -> Response:
    rec = db.get(IssuedReport, rid)
    mine = scope.client_filter(who, IssuedReport.client_id)
    if mine is not None and rec is not None and db.scalar(
            select(IssuedReport.id).where(IssuedReport.id == rid, mine)) is None:
        rec = None  # another client's report: as if it did not exist
    if rec is None or fmt not in FORMATS:
        raise HTTPException(status_code=404, detail="no such issued report file")
    try:
        content = stored_file(db, fmt=fmt, report_id=rid)
    except ReportError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return web_admin.attachment(
        content, fmt, f"handling-report-{rec.number or rec.id}-{rec.month}-{rec.lang}.{fmt}")


@router.post("/reports/{rid}/supersede", name="reports.supersede", include_in_schema=False)
def reports_supersede(request: Request, rid: deps.RowId, db: Db, who: Who,
                      reason: Annotated[str, Form(max_length=1000)]) -> Response:
    old = db.get(IssuedReport, rid)
    if old is None:
        raise HTTPException(status_code=404, detail="no such issued report")
    try:
        out = issue(db, month=old.month, client_id=old.client_id, lang=old.lang,
                    zone=deps.settings(request).zone, now=deps.now(request),
                    actor=who.username, supersedes=old.id, reason=reason)
        db.commit()
    except ReportError as exc:
        db.rollback()
        return _page(request, db, error=str(exc), status=400)
    return RedirectResponse(f"/reports?issued={quote(out.number)}", status_code=303)


@router.post("/reports/verify", name="reports.verify", include_in_schema=False)
async def reports_verify(request: Request, db: Db,
                         file: Annotated[UploadFile, File()]) -> Response:
    data = await file.read(MAX_BYTES + 1)
    try:
        res = verify_file(db, data)
    except ReportError as exc:
        return _page(request, db, error=str(exc), status=400)
    return _page(request, db, verified=res)


router.routes.extend(web_admin.router.routes)
