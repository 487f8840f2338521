"""Shared request dependencies: DB session, caller, clock, template rendering."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from time import monotonic
from typing import Annotated, Any, TypeVar

from fastapi import HTTPException, Request
from fastapi import Path as PathParam
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.auth.roles import allowed
from dashboard.auth.scope import may_call
from dashboard.auth.service import Principal
from dashboard.i18n import LANGUAGE_COOKIE, Translator, pick_language
from dashboard.names import Names
from dashboard.settings import DashboardSettings
from dashboard.textguard import current_hits
from dashboard.web.guard import NOTICE, finalize

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
TEMPLATES.env.autoescape = True
TEMPLATES.env.finalize = finalize  # no printed value carries an individual number


def file_size(value: Any) -> str:
    """Bytes as people in the office read them: 81.9 KB, 3.2 MB (decimal units, as Windows'
    Explorer labels them; Jinja's own filter writes ``kB``)."""
    n = float(value or 0)
    if n < 1000:
        return f"{int(n)} B"
    for unit in ("KB", "MB"):
        n /= 1000
        if n < 1000:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:.1f} GB"


TEMPLATES.env.filters["filesizeformat"] = file_size


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


# The navigation, grouped by task: (group message key, items); an item is (route, link,
# message key) and shows only to roles that may follow it.
NAV_GROUPS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    ("nav.group.now", (
        ("overview.page", "/", "nav.overview"),
        ("review.page", "/review", "nav.review"),
        ("presence.page", "/presence", "nav.presence"),
        ("door_log.page", "/door-log", "nav.door_log"),
    )),
    ("nav.group.records", (
        ("numlog.page", "/numlog", "nav.numlog"),
        ("printing.page", "/printing", "nav.printing"),
        ("hosts.page", "/hosts", "nav.hosts"),
        ("media.page", "/media", "nav.media"),
        ("snapshots.page", "/backups", "nav.backups"),
        ("reports.page", "/reports", "nav.reports"),
        ("audit.page", "/audit", "nav.audit"),
    )),
    ("nav.group.manage", (
        ("people.page", "/people", "nav.people"),
        ("groups.page", "/groups", "nav.groups"),
        ("doors.page", "/doors", "nav.doors"),
        ("printers.page", "/printers", "nav.printers"),
        ("lockdown.page", "/lockdown", "nav.lockdown"),
    )),
    ("nav.group.settings", (
        ("names.page", "/names", "nav.names"),
        ("nodes.page", "/nodes", "nav.nodes"),
        ("card_keys.page", "/card-keys", "nav.card_keys"),
        ("users.page", "/users", "nav.users"),
    )),
)
NAV_ITEMS: tuple[tuple[str, str, str], ...] = tuple(i for _, items in NAV_GROUPS for i in items)

# Where each role starts: its work (the review queue, last night's backups, the records).
LANDING: dict[str, str] = {
    "admin": "/", "security_admin": "/review", "backup_operator": "/backups",
    "auditor": "/door-log",
}


def landing(role: str, who: Principal | None = None) -> str:
    if who is not None and who.client_id is not None:
        return "/reports"  # a client company's auditor: its reports
    if who is not None and who.site is not None:  # a site's account: its queue, or its doors
        return "/review" if str(role) == "security_admin" else "/door-log"
    return LANDING.get(str(role), "/")


NAMES_TTL_S = 2.0  # names change rarely; a page is at most this much behind a rename


def names(request: Request) -> Names:
    """The request's names for ids (people, doors, readers, hosts, nodes), loaded once."""
    state = request.scope.setdefault("state", {})
    found = state.get("names")
    if found is None:
        lang = translator(request).lang
        cache = request.app.state.__dict__.setdefault("_names_cache", {})
        hit = cache.get(lang)
        if hit is None or monotonic() - hit[0] > NAMES_TTL_S:
            with request.app.state.sessionmaker() as db:
                hit = (monotonic(), Names.load(db, lang))
            cache[lang] = hit
        found = replace(hit[1])  # the request may change its language; the cache keeps its own
        state["names"] = found
    return found  # type: ignore[no-any-return]


def forget_names(request: Request) -> None:
    """After a rename: the next page reads the names again."""
    request.app.state.__dict__.pop("_names_cache", None)
    request.scope.setdefault("state", {}).pop("names", None)


def lockdown_state(request: Request) -> Any:
    """The site's lockdown row when a lockdown is on (for the banner on every page), else None."""
    from dashboard.models import SiteSettings

    with request.app.state.sessionmaker() as db:
        row = db.get(SiteSettings, settings(request).site)
        if row is None or not (row.lockdown or row.lockdown_doors):
            return None
        db.expunge(row)
        return row


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    who = request.scope.get("state", {}).get("principal")

    def can(route_name: str) -> bool:
        """The role matrix, for templates: show a control only to roles that may use it."""
        return (isinstance(who, Principal) and allowed(route_name, who.role)
                and may_call(who, route_name))  # a site's or client's account: its pages

    t = translator(request)
    n = names(request)
    base = {
        "t": t,
        "n": n,
        "me": who,
        "csrf_token": getattr(who, "csrf_token", ""),
        "site": settings(request).site,
        "site_name": n.site(settings(request).site),
        "nav": getattr(request.scope.get("route"), "name", ""),
        "flash": flash_from_query(request),
        "notice": notice(request),
        "can": can,
        # the app's own menu when a part added to it (the demo's panel), else the console's
        "nav_groups": getattr(request.app.state, "nav_groups", NAV_GROUPS),
        "home": landing(who.role, who) if isinstance(who, Principal) else "/",
        "lockdown": lockdown_state(request) if isinstance(who, Principal) else None,
        # what a failed form had: re-rendered forms show it again instead of starting empty
        "typed": typed(request),
    }
    return TEMPLATES.TemplateResponse(request, name, {**base, **context}, status_code=status)


def typed(request: Request) -> dict[str, Any]:
    form = getattr(request, "_form", None)
    if request.method != "POST" or form is None:
        return {}
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key in ("csrf_token", "password", "approver_password") or not isinstance(value, str):
            continue
        out[key] = [*out[key], value] if isinstance(out.get(key), list) else \
            ([out[key], value] if key in out else value)
    return out


# A service's refusal in the reader's words: (a fragment of the service's message, key).
SERVICE_ERRORS = (("already exists", "error.exists"), ("exists", "error.exists"),
                  ("unknown door", "error.unknown_door"), ("unknown group", "error.unknown_group"),
                  ("unknown printer", "error.unknown_printer"), ("reason", "error.reason"),
                  ("no person", "error.no_person"), ("not found", "error.not_found"),
                  ("uid", "error.uid"), ("card", "error.card"),
                  ("after its start", "error.window"))


def error_text(request: Request, detail: object) -> str:
    text = str(detail).lower()
    key = next((k for part, k in SERVICE_ERRORS if part in text), "error.invalid")
    return translator(request)(key)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site absolute paths are followed after log-in or a language change."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


FLASH_KEYS = frozenset(
    {"common.saved", "people.card_bound", "people.enrolled", "users.created",
     "account.changed", "review.bulk_done", "card_keys.rotated", "card_keys.retired"}
)


def notice(request: Request) -> str:
    """Tell the user that an individual number was removed from what they typed: in this
    request, or in the one that redirected here (``notice=number_removed``)."""
    if current_hits() or request.query_params.get("notice") == NOTICE:
        return translator(request)("guard.number_removed")
    return ""


def flash_from_query(request: Request) -> str:
    """A success message named by ``?msg=`` after a redirect (only known keys are shown)."""
    key = request.query_params.get("msg", "")
    return translator(request)(key) if key in FLASH_KEYS else ""


class ErrorOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detail: str


# a database row's id in a path: past the 64-bit range it names no row (a 404, not a crash)
RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]

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
