"""Number-access logs in the web UI and API: CSV upload (page), JSON rows (API, scoped token).

``router`` is one of ``dashboard.app.routers()``; its roles are rows of
``dashboard.auth.roles.ROLE_MATRIX`` (the middleware refuses routes it does not know).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.auth import scope
from dashboard.auth.service import Principal
from dashboard.models.numlog import NumlogBatch
from dashboard.numlog.parse import NumlogError
from dashboard.numlog.rows import rows_filters, rows_page
from dashboard.numlog.service import MAX_BYTES, import_csv, import_json
from dashboard.web import deps

router = APIRouter()

# The dashboard's CSRF check reads the token from a header or an urlencoded body, not from a
# multipart body: this script (same origin, allowed by the CSP) sends the upload with the header.
UPLOAD_JS = """
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await fetch(form.action, {method: "POST", body: new FormData(form),
      headers: {"X-CSRF-Token": form.elements["csrf_token"].value}, credentials: "same-origin"});
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    document.body.replaceWith(document.adoptNode(doc.body));
  });
});
"""

def _page(request: Request, db: DbSession, report: dict[str, Any] | None = None,
          error: str = "", status: int = 200) -> Response:
    who = deps.principal(request)
    # a client's auditor: that client's rows only, and not the office's import batches
    batches = [] if who.scoped else db.scalars(
        select(NumlogBatch).order_by(NumlogBatch.id.desc()).limit(20)).all()
    f = rows_filters(request)
    return deps.render(request, "numlog/page.html", {
        "batches": batches, "report": report, "error": error, "f": f,
        **rows_page(db, f, deps.settings(request).zone, scope.client_offices(who))}, status)


@router.get("/numlog", name="numlog.page", include_in_schema=False)
def numlog_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    return _page(request, db)


@router.get("/numlog/upload.js", name="numlog.upload_js", include_in_schema=False)
def numlog_upload_js() -> Response:
    return Response(UPLOAD_JS, media_type="application/javascript",
                    headers={"Cache-Control": "no-cache"})


@router.post("/numlog/upload", name="numlog.upload", include_in_schema=False)
async def numlog_upload(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    source: Annotated[str, Form(max_length=64)], file: Annotated[UploadFile, File()],
) -> Response:
    data = await file.read(MAX_BYTES + 1)
    try:
        report = import_csv(db, data, source=source, now=deps.now(request),
                            zone=deps.settings(request).zone, actor=who.username,
                            filename=file.filename or "")
        db.commit()
    except NumlogError:
        db.rollback()
        return _page(request, db, error=deps.translator(request)("numlog.bad_file"),
                     status=400)
    return _page(request, db, report=report.as_dict())


class RowsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, max_length=64)
    rows: list[dict[str, Any]] = Field(max_length=50_000)


class ImportOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_id: int
    source: str
    total: int
    stored: int
    duplicate: int
    bad: int
    redacted: int
    new_findings: int
    errors: list[dict[str, Any]]


@router.post("/api/v1/numlog/rows", name="api.numlog.rows", response_model=ImportOut,
             responses=deps.ERRORS, tags=["numlog"])
def numlog_rows_api(request: Request, body: RowsIn, db: Annotated[DbSession, Depends(deps.db)],
                    who: Annotated[Principal, Depends(deps.principal)]) -> ImportOut:
    """Rows as the number system's API sends them (fields: no, office, ts, screen, action,
    purpose, operator, result, terminal); idempotent; numbers redacted before storage."""
    try:
        report = import_json(db, body.rows, source=body.source, now=deps.now(request),
                             zone=deps.settings(request).zone, actor=who.username)
        db.commit()
    except NumlogError as exc:
        db.rollback()
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    out = report.as_dict()
    return ImportOut(**{k: out[k] for k in ImportOut.model_fields})
