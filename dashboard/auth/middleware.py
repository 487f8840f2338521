"""The security middleware: headers on every response, authentication, role matrix, CSRF.

It runs before routing so nothing (not even body validation) is reached unauthenticated: the
request's route is looked up in the router, public routes pass, every other route needs a
session cookie or a scoped API token and the caller's role must be in the route's column; a
session opened with a temporary password reaches only the change-password page and log-out.
State-changing calls made with a session need the session's CSRF token (header
``X-CSRF-Token`` or form field ``csrf_token``); token-authenticated API calls are exempt.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import anyio.to_thread
from starlette.routing import Match, Router

from dashboard.auth.roles import PUBLIC_ROUTES, ROLE_MATRIX, WHILE_MUST_CHANGE
from dashboard.auth.scope import may_call
from dashboard.auth.service import AuthService, Principal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 1 << 20
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def security_headers(https: bool, path: str) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
        (
            b"permissions-policy",
            b"camera=(), microphone=(), geolocation=(), usb=(), serial=(), payment=(), "
            b"interest-cohort=()",
        ),
    ]
    if not path.startswith("/static/"):
        headers.append((b"cache-control", b"no-store"))
    if https:
        headers.append((b"strict-transport-security", b"max-age=31536000"))
    return headers


def session_cookie_name(https: bool) -> str:
    return "__Host-secroom_session" if https else "secroom_session"


def route_name(router: Router, scope: Scope) -> str | None:
    partial: str | None = None
    for route in router.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "name", None)
        if match == Match.PARTIAL and partial is None:
            partial = getattr(route, "name", None)
    return partial


def _wants_page(scope: Scope) -> bool:
    return ("text/html" in _header(scope, b"accept")
            and not scope.get("path", "").startswith("/api/"))


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _respond(send: Send, status: int, body: dict[str, Any], headers=()) -> None:  # type: ignore[no-untyped-def]
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": payload})


class SecurityMiddleware:
    def __init__(
        self, app: ASGIApp, *, router: Router, auth: AuthService, https: bool,
        now: Callable[[], Any], forbidden_page: Callable[..., Awaitable[None]] | None = None,
    ) -> None:
        self.app = app
        self.router = router
        self.auth = auth
        self.https = https
        self.now = now
        self.cookie = session_cookie_name(https)
        self.forbidden_page = forbidden_page  # a page (in the reader's language) for browsers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(self.https, scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = message.get("headers", [])
                # a route that says how it may be cached (a still: private, revalidated) keeps
                # its word; every other response is no-store
                ours = [h for h in extra if h[0] != b"cache-control"
                        or not any(k.lower() == b"cache-control" for k, _ in own)]
                message["headers"] = [*own, *ours]
            await send(message)

        name = route_name(self.router, scope)
        if name is None or name in PUBLIC_ROUTES:
            await self.app(scope, receive, send_with_headers)
            return
        method = scope["method"]
        principal = await self._authenticate(scope)
        if principal is None:
            await self._unauthenticated(scope, send_with_headers)
            return
        if principal.role not in ROLE_MATRIX.get(name, frozenset()):
            if self.forbidden_page is not None and method == "GET" and _wants_page(scope):
                await self.forbidden_page(scope, receive, send_with_headers, principal)
                return
            await _respond(send_with_headers, 403, {"detail": "forbidden for your role"})
            return
        if not may_call(principal, name):
            if self.forbidden_page is not None and method == "GET" and _wants_page(scope):
                await self.forbidden_page(scope, receive, send_with_headers, principal)
                return
            await _respond(send_with_headers, 403,
                           {"detail": "outside your account's site or client"})
            return
        if principal.must_change_password and name not in WHILE_MUST_CHANGE:
            await self._must_change(scope, send_with_headers)
            return
        if not self._same_origin(scope):
            await _respond(send_with_headers, 403, {"detail": "cross-origin request refused"})
            return
        if principal.via == "token":
            needed = "read" if method in SAFE_METHODS else "write"
            if needed not in principal.scopes:
                await _respond(send_with_headers, 403, {"detail": f"token lacks {needed} scope"})
                return
        elif method not in SAFE_METHODS:
            ok, receive = await self._check_csrf(scope, receive, principal)
            if not ok:
                await _respond(send_with_headers, 403, {"detail": "missing or bad CSRF token"})
                return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send_with_headers)

    async def _authenticate(self, scope: Scope) -> Principal | None:
        now = self.now()
        authz = _header(scope, b"authorization")
        if authz[:7].lower() == "bearer ":
            # Tokens authenticate the JSON API only; pages need a browser session.
            if not scope.get("path", "").startswith("/api/"):
                return None
            secret = authz[7:].strip()
            return await anyio.to_thread.run_sync(self.auth.resolve_token, secret, now)
        cookies = SimpleCookie()
        try:
            cookies.load(_header(scope, b"cookie"))
        except Exception:  # noqa: BLE001 - a malformed cookie header is just no session
            return None
        morsel = cookies.get(self.cookie)
        if morsel is None:
            return None
        return await anyio.to_thread.run_sync(self.auth.resolve_session, morsel.value, now)

    def _same_origin(self, scope: Scope) -> bool:
        origin = _header(scope, b"origin")
        if not origin or origin == "null" and scope["method"] in SAFE_METHODS:
            return True
        return urlsplit(origin).netloc == _header(scope, b"host")

    async def _check_csrf(
        self, scope: Scope, receive: Receive, principal: Principal
    ) -> tuple[bool, Receive]:
        sent = _header(scope, b"x-csrf-token")
        ctype = _header(scope, b"content-type").split(";")[0].strip().lower()
        if not sent and ctype == "application/x-www-form-urlencoded":
            body, receive = await _buffer(receive)
            if body is None:
                return False, receive
            sent = (parse_qs(body.decode("latin-1")).get("csrf_token") or [""])[0]
        expected = principal.csrf_token
        return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode()), receive

    async def _must_change(self, scope: Scope, send: Send) -> None:
        """A session opened with a temporary password may only set the user's own one."""
        if scope["method"] == "GET" and "text/html" in _header(scope, b"accept"):
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", b"/account/password"),
                                    (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await _respond(send, 403, {"detail": "set a new password first"})

    async def _unauthenticated(self, scope: Scope, send: Send) -> None:
        path = scope.get("path", "/")
        wants_html = "text/html" in _header(scope, b"accept")
        if scope["method"] == "GET" and wants_html and not path.startswith("/api/"):
            target = "/login?next=" + quote(path, safe="/")
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", target.encode()), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await _respond(send, 401, {"detail": "authentication required"},
                       [(b"www-authenticate", b"Bearer")])


async def _buffer(receive: Receive) -> tuple[bytes | None, Receive]:
    """Read the whole (bounded) body and hand back a receive that replays it downstream."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None, receive
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None, receive
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay
