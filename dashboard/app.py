"""The dashboard's FastAPI app, built by a factory and secure by default.

Every route needs a session or a scoped API token unless it is in
``dashboard.auth.roles.PUBLIC_ROUTES``; each authenticated route's roles come from
``ROLE_MATRIX`` (a route missing from both is refused to everyone).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker as SessionMaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from controller.envelope import now_utc
from controller.numguard import install_log_guard
from dashboard.auth.middleware import SecurityMiddleware
from dashboard.auth.service import AuthService
from dashboard.db import make_engine, make_sessionmaker
from dashboard.enrolment import EnrolDesk
from dashboard.settings import DashboardSettings
from dashboard.web import errors
from dashboard.web.guard import NumberGuardMiddleware

STATIC_DIR = Path(__file__).with_name("static")


def create_app(
    settings: DashboardSettings,
    *,
    sessionmaker: SessionMaker[DbSession] | None = None,
    bus: Any = None,
    clock: Callable[[], datetime] = now_utc,
) -> FastAPI:
    """Build the app. ``sessionmaker`` defaults to one over ``settings.database_url``;
    ``bus`` is the in-process event bus live updates, ended sessions and card enrolment
    go through."""
    install_log_guard()  # whoever serves the app: no log line carries an individual number
    if sessionmaker is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        sessionmaker = make_sessionmaker(make_engine(settings.database_url))
    app = FastAPI(
        title="secroom dashboard",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    for route in app.router.routes:  # the schema route FastAPI adds; it needs a login too
        if getattr(route, "path", "") == "/api/v1/openapi.json":
            route.name = "openapi"  # type: ignore[attr-defined]
    app.state.settings = settings
    app.state.sessionmaker = sessionmaker
    app.state.clock = clock
    app.state.bus = bus
    app.state.auth = AuthService(settings, sessionmaker, on_sessions_ended=_announcer(bus))
    app.state.enrol_desk = EnrolDesk(clock)
    app.state.enrol_desk.attach(bus)
    app.state.person_sections = person_sections()
    for router in routers():
        # Flat routes (no include_router nesting) so the security middleware can resolve
        # every request's route name before routing, exactly as the router will.
        app.router.routes.extend(router.routes)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, errors.http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, errors.server_error)
    app.add_middleware(NumberGuardMiddleware)  # inside the security middleware
    app.add_middleware(
        SecurityMiddleware, router=app.router, auth=app.state.auth, https=settings.https,
        now=clock, forbidden_page=errors.forbidden_page,
    )
    return app


def routers() -> list[APIRouter]:
    from dashboard.backups import web as backups
    from dashboard.camera import web as camera
    from dashboard.correlation import web as correlation
    from dashboard.hosts import web as hosts
    from dashboard.media import web as media
    from dashboard.numlog import web as numlog
    from dashboard.printing import web as printing
    from dashboard.reports import web as reports
    from dashboard.review import web as review
    from dashboard.web import (
        account,
        anomalies,
        audit,
        card_keys,
        door_log,
        doors,
        enrol,
        groups,
        live,
        lockdown,
        metrics,
        names,
        node_keys,
        nodes,
        overview,
        people,
        personalise,
        presence,
        printers,
        system,
        users,
    )

    return [
        system.router, overview.router, door_log.router, presence.router, nodes.router,
        node_keys.router, card_keys.router,
        people.router, enrol.router, personalise.router, groups.router, doors.router,
        printers.router,
        lockdown.router,
        anomalies.router, audit.router, users.router, account.router, live.router,
        printing.router, backups.router, media.router, numlog.router, correlation.router,
        reports.router, review.router, names.router, hosts.router, metrics.router,
        camera.router,
    ]



def _announcer(bus: Any) -> Callable[[list[int]], None] | None:
    """Ended sessions go out on the bus, so this process's live streams close at once."""
    publish = getattr(bus, "publish", None)
    if publish is None:
        return None
    return lambda ids: publish("session", {"ended": ids})


def person_sections() -> list[tuple[str, Any]]:
    """Sections feature packages add to a person's page: (the route whose roles may see it,
    ``section(request, db, person_id) -> template context``)."""
    from dashboard.hosts.web import person_context as pc_context
    from dashboard.printing.web import person_context
    from dashboard.web.enrol import person_context as enrol_context
    from dashboard.web.personalise import person_context as personalise_context

    return [("people.enrol_open", enrol_context),
            ("people.personalise", personalise_context), ("printing.person", person_context),
            ("hosts.page", pc_context)]


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    """422 as FastAPI words it, without echoing the refused values: a too-long password or a
    field holding an individual number must not come back in the response (or its logs).
    A page gets a page in the reader's language."""
    if errors.wants_html(request):
        return errors.error_page(request, 422)
    problems = [{k: v for k, v in e.items() if k not in ("input", "ctx", "url")}
              for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(problems)})
