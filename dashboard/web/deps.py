"""Shared request dependencies: DB session, caller, clock, template rendering."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.auth.roles import allowed
from dashboard.auth.service import Principal
from dashboard.i18n import LANGUAGE_COOKIE, Translator, pick_language
from dashboard.settings import DashboardSettings

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
TEMPLATES.env.autoescape = True


def settings(request: Request) -> DashboardSettings:
    value: DashboardSettings = request.app.state.settings
    return value


def db(request: Request) -> Iterator[DbSession]:
    with request.app.state.sessionmaker() as session:
        yield session


def now(request: Request) -> datetime:
    value: datetime = request.app.state.clock()
    return value


def principal(request: Request) -> Principal:
    value = request.scope.get("state", {}).get("principal")
    if not isinstance(value, Principal):  # the middleware guarantees it on non-public routes
        raise HTTPException(status_code=401, detail="authentication required")
    return value


def translator(request: Request) -> Translator:
    cfg = settings(request)
    who = request.scope.get("state", {}).get("principal")
    lang = pick_language(
        request.cookies.get(LANGUAGE_COOKIE), getattr(who, "language", None), cfg.default_language
    )
    return Translator(lang, cfg.zone)


# The navigation bar: (route, link, message key); each link shows only to roles that may follow it.
NAV_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("overview.page", "/", "nav.overview"),
    ("door_log.page", "/door-log", "nav.door_log"),
    ("presence.page", "/presence", "nav.presence"),
    ("people.page", "/people", "nav.people"),
    ("groups.page", "/groups", "nav.groups"),
    ("doors.page", "/doors", "nav.doors"),
    ("printers.page", "/printers", "nav.printers"),
    ("lockdown.page", "/lockdown", "nav.lockdown"),
    ("printing.page", "/printing", "nav.printing"),
    ("hosts.page", "/hosts", "nav.hosts"),
    ("media.page", "/media", "nav.media"),
    ("snapshots.page", "/backups", "nav.backups"),
    ("nodes.page", "/nodes", "nav.nodes"),
    ("anomalies.page", "/anomalies", "nav.anomalies"),
    ("numlog.page", "/numlog", "nav.numlog"),
    ("findings.page", "/findings", "nav.findings"),
    ("reports.page", "/reports", "nav.reports"),
    ("audit.page", "/audit", "nav.audit"),
    ("users.page", "/users", "nav.users"),
)


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    who = request.scope.get("state", {}).get("principal")

    def can(route_name: str) -> bool:
        """The role matrix, for templates: show a control only to roles that may use it."""
        return isinstance(who, Principal) and allowed(route_name, who.role)

    base = {
        "t": translator(request),
        "me": who,
        "csrf_token": getattr(who, "csrf_token", ""),
        "site": settings(request).site,
        "nav": getattr(request.scope.get("route"), "name", ""),
        "flash": flash_from_query(request),
        "can": can,
        "nav_items": NAV_ITEMS,
    }
    return TEMPLATES.TemplateResponse(request, name, {**base, **context}, status_code=status)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site absolute paths are followed after log-in or a language change."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


FLASH_KEYS = frozenset(
    {"common.saved", "people.card_bound", "users.created", "account.changed"}
)


def flash_from_query(request: Request) -> str:
    """A success message named by ``?msg=`` after a redirect (only known keys are shown)."""
    key = request.query_params.get("msg", "")
    return translator(request)(key) if key in FLASH_KEYS else ""


class ErrorOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The change is not possible"},
    404: {"model": ErrorOut, "description": "Not found"},
    409: {"model": ErrorOut, "description": "Conflicts with the current state"},
}


T = TypeVar("T")


def change(db: DbSession, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one audited service change and commit it; service errors become 4xx responses."""
    from dashboard.services import Conflict, NotFound, ServiceError

    try:
        result = fn(db, *args, **kwargs)
        db.commit()
    except NotFound as exc:
        db.rollback()
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except Conflict as exc:
        db.rollback()
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    except ServiceError as exc:
        db.rollback()
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    return result
