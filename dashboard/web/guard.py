"""The web side of the number guard: what a request typed is guarded (``dashboard.textguard``);
here every hit is recorded as the "number found" anomaly, the user is told, and nothing the
dashboard sends back (error details, pages) echoes a number.

- ``NumberGuardMiddleware`` (pure ASGI) collects the hits of each request. When there were any,
  the response carries ``X-Secroom-Notice: number-removed`` (and the fields, by name), a
  redirect's target gets ``notice=number_removed`` so the next page shows the notice in the
  user's language, and one anomaly ``numlog.number_found`` (the kind the number-log import
  raises) is raised or bumped per route and user, naming the fields, never the value.
- ``dashboard.web.errors`` scrubs an ``HTTPException``'s detail (a path or query value may be
  echoed in it), and ``deps.TEMPLATES`` scrubs every value a page renders (``finalize``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio.to_thread

from controller.numguard import scrub
from dashboard.anomalies import raise_anomaly
from dashboard.textguard import Hit, collecting

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ANOMALY_KIND = "numlog.number_found"
NOTICE = "number_removed"


def _fields(hits: list[Hit]) -> list[str]:
    return sorted({h.field for h in hits})


def _with_notice(location: str) -> str:
    parts = urlsplit(location)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "notice"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("notice", NOTICE)])))


class NumberGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with collecting() as hits:

            async def tell(message: Message) -> None:
                if message["type"] == "http.response.start" and hits:
                    headers = []
                    for key, value in message.get("headers", []):
                        if key.lower() == b"location" and 300 <= message["status"] < 400:
                            value = _with_notice(value.decode("latin-1")).encode("latin-1")
                        headers.append((key, value))
                    headers.append((b"x-secroom-notice", b"number-removed"))
                    headers.append((b"x-secroom-notice-fields", ",".join(_fields(hits)).encode()))
                    message["headers"] = headers
                await send(message)

            try:
                await self.app(scope, receive, tell)
            finally:
                if hits:
                    await anyio.to_thread.run_sync(_record, scope, list(hits))


def _record(scope: Scope, hits: list[Hit]) -> None:
    """One anomaly per route and user (bumped while it is open): who typed a number where."""
    app = scope["app"]
    who = scope.get("state", {}).get("principal")
    user = getattr(who, "username", None) or "anonymous"
    route = getattr(scope.get("route"), "name", None) or scrub(scope.get("path", "?"))
    fields = _fields(hits)
    count = sum(h.count for h in hits)
    with app.state.sessionmaker() as session:
        raise_anomaly(
            session, ANOMALY_KIND, dedupe_key=f"typed:{route}:{user}", now=app.state.clock(),
            severity="critical", count=count,
            subject=f"individual number removed from typed text ({route}: "
                    f"{', '.join(fields)}) by {user}"[:255],
            detail={"route": route, "fields": fields, "user": user, "source": "typed"},
        )
        session.commit()


def finalize(value: Any) -> Any:
    """Jinja's ``finalize``: every value a template prints, without an individual number."""
    if isinstance(value, str) and value:
        cleaned = scrub(value)
        if cleaned is not value:
            return cleaned if type(value) is str else type(value)(cleaned)  # Markup stays Markup
    return value
