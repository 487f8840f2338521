"""Errors as pages in the reader's language that say what to do next (403, 404, 409, 422,
500); the JSON API keeps its JSON errors."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from controller.numguard import scrub
from dashboard.web import deps

log = logging.getLogger("secroom.dashboard")
KNOWN = (400, 403, 404, 405, 408, 409, 413, 422, 429, 500)


def wants_html(request: Request) -> bool:
    return (not request.url.path.startswith("/api/")
            and "text/html" in request.headers.get("accept", ""))


def error_page(request: Request, status: int) -> Response:
    code = status if status in KNOWN else (500 if status >= 500 else 400)
    return deps.render(request, "error.html", {"status": status, "code": code}, status)


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if wants_html(request):
        return error_page(request, exc.status_code)
    headers: Any = getattr(exc, "headers", None)
    detail = scrub(exc.detail) if isinstance(exc.detail, str) else exc.detail  # may echo input
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path,
              type(exc).__name__)
    if wants_html(request):
        return error_page(request, 500)
    return JSONResponse({"detail": "internal error"}, status_code=500)


async def forbidden_page(scope: Any, receive: Any, send: Any, principal: Any) -> None:
    """The middleware's refusal of a page the caller's role may not open, as a page."""
    scope.setdefault("state", {})["principal"] = principal
    response = error_page(Request(scope, receive), 403)
    await response(scope, receive, send)
