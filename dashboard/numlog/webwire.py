"""Wiring of this feature's routers into an app (what the lead does in dashboard.web.routers and
dashboard.auth.roles.ROLE_MATRIX); used by the tests until that is done."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dashboard.auth.roles import Role


def routers() -> list[APIRouter]:
    from dashboard.correlation import web as correlation_web
    from dashboard.numlog import web as numlog_web
    from dashboard.reports import web as reports_web

    return [numlog_web.router, correlation_web.router, reports_web.router]


def route_roles() -> dict[str, frozenset[Role]]:
    from dashboard.correlation import web as correlation_web
    from dashboard.numlog import web as numlog_web
    from dashboard.reports import web as reports_web

    return {**numlog_web.ROUTE_ROLES, **correlation_web.ROUTE_ROLES, **reports_web.ROUTE_ROLES}


def wire(app: Any, matrix: dict[str, frozenset[Role]]) -> None:
    """Add the routes to ``app`` (flat, like dashboard.app does) and their roles to ``matrix``."""
    for r in routers():
        app.router.routes.extend(r.routes)
    matrix.update(route_roles())
