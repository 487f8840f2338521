"""Health, log-in, log-out, language choice and the caller's identity."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from dashboard.auth.middleware import session_cookie_name
from dashboard.auth.roles import PUBLIC_ROUTES, allowed
from dashboard.auth.service import AuthService, Principal
from dashboard.i18n import LANGUAGE_COOKIE, LANGUAGES
from dashboard.web import deps

router = APIRouter()
LOGIN_CSRF_COOKIE = "secroom_login_csrf"


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ok"]


class Me(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str
    role: str
    via: str


@router.get("/health", name="health", response_model=Health, tags=["system"])
def health() -> Health:
    return Health(status="ok")


@router.get("/login", name="login.form", include_in_schema=False)
def login_form(request: Request, next: str = "/") -> Response:  # noqa: A002
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = deps.render(
        request, "login.html", {"login_csrf": token, "next": deps.safe_next(next), "error": ""}
    )
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.post("/login", name="login.submit", include_in_schema=False)
def login_submit(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=128)],
    next: Annotated[str, Form(max_length=2048)] = "/",  # noqa: A002
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    target = deps.safe_next(next)
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        return _login_error(request, "login.error.csrf", target, 403)
    auth: AuthService = request.app.state.auth
    ip = request.client.host if request.client else ""
    result = auth.login(username, password, ip, deps.now(request))
    if result.outcome == "throttled":
        return _login_error(request, "login.error.throttled", target, 429)
    if result.outcome == "expired":
        return _login_error(request, "login.error.expired", target, 401)
    if result.outcome != "ok":
        return _login_error(request, "login.error.bad", target, 401)
    assert result.principal is not None
    if result.principal.must_change_password:
        target = "/account/password"  # a temporary password: the user sets their own first
    elif target == "/" or not allowed_path(request, target, result.principal.role):
        # each role (and a site or client account) starts where its work is
        target = deps.landing(result.principal.role, result.principal)
    response = RedirectResponse(target, status_code=303)
    settings = deps.settings(request)
    _set_cookie(request, response, session_cookie_name(settings.https), result.session_token,
                max_age=settings.session_max_age_s)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


def allowed_path(request: Request, path: str, role: str) -> bool:
    """May ``role`` open the page at ``path`` (so log-in never lands on a 403)?"""
    from starlette.routing import Match

    scope = {"type": "http", "path": path.split("?")[0], "method": "GET"}
    for route in request.app.router.routes:
        if route.matches(scope)[0] == Match.FULL:
            name = getattr(route, "name", "")
            return name in PUBLIC_ROUTES or allowed(name, role)
    return True


def _login_error(request: Request, key: str, target: str, status: int) -> Response:
    token = secrets.token_urlsafe(32)
    response = deps.render(
        request, "login.html", {"login_csrf": token, "next": target, "error": key}, status
    )
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
        secure=deps.settings(request).https,
    )


@router.post("/logout", name="logout", include_in_schema=False)
def logout(request: Request, who: Annotated[Principal, Depends(deps.principal)]) -> Response:
    if who.session_id is not None:
        request.app.state.auth.logout(who.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(session_cookie_name(deps.settings(request).https), path="/")
    return response


@router.get("/lang/{code}", name="language.set", include_in_schema=False)
def set_language(request: Request, code: str, next: str = "/") -> Response:  # noqa: A002
    response = RedirectResponse(deps.safe_next(next), status_code=303)
    if code in LANGUAGES:
        _set_cookie(request, response, LANGUAGE_COOKIE, code, max_age=365 * 86400)
    return response


@router.get("/api/v1/me", name="me", response_model=Me, tags=["system"])
def me(who: Annotated[Principal, Depends(deps.principal)]) -> Me:
    return Me(username=who.username, role=who.role.value, via=who.via)
