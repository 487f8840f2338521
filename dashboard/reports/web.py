"""The monthly handling report in the web UI: a form that issues the report (recorded with its
seal, audited) and downloads it as PDF or CSV, and the list of issued reports.

``router`` is one of ``dashboard.app.routers()``; its roles are rows of
``dashboard.auth.roles.ROLE_MATRIX``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.auth.service import Principal
from dashboard.models.correlation import IssuedReport
from dashboard.reports.data import ReportError
from dashboard.reports.labels import label
from dashboard.reports.monthly import issue
from dashboard.web import deps

router = APIRouter()


def _page(request: Request, db: DbSession, error: str = "", status: int = 200) -> Response:
    lang = deps.translator(request).lang
    issued = db.scalars(select(IssuedReport).order_by(IssuedReport.id.desc()).limit(50)).all()
    return deps.render(request, "reports/page.html", {
        "issued": issued, "error": error, "L": lambda k, **f: label(k, lang, **f)}, status)


@router.get("/reports", name="reports.page", include_in_schema=False)
def reports_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    return _page(request, db)


@router.post("/reports/monthly", name="reports.monthly", include_in_schema=False)
def reports_monthly(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    month: Annotated[str, Form(max_length=7)], org: Annotated[str, Form(max_length=255)] = "",
    lang: Annotated[str, Form(pattern="^(ja|en)$")] = "ja",
    fmt: Annotated[str, Form(pattern="^(pdf|csv)$")] = "pdf",
) -> Response:
    try:
        out = issue(db, month=month, org=org, lang=lang, fmt=fmt,  # type: ignore[arg-type]
                    zone=deps.settings(request).zone, now=deps.now(request),
                    actor=who.username)
        db.commit()
    except ReportError as exc:
        db.rollback()
        return _page(request, db, str(exc), 400)
    name = f"handling-report-{month}-{lang}.{fmt}"
    media = "application/pdf" if fmt == "pdf" else "text/csv; charset=utf-8"
    return Response(out.content, media_type=media, headers={
        "Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store"})
