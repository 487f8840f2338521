"""Server-rendered pages and the JSON API, one router per resource."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from dashboard.web import overview, system

    return [system.router, overview.router]
