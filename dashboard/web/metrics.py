"""``GET /api/v1/metrics``: the dashboard's Prometheus metrics (dashboard.metrics).

Behind the ordinary API authentication: a Prometheus scrape job sends an API token with the
read scope (``authorization: {credentials_file: ...}`` in its scrape config); any role may read
it, since the metrics name nodes, doors and reasons, never a person.
"""

from __future__ import annotations

import threading

import anyio.to_thread
from fastapi import APIRouter, Request
from starlette.responses import Response

router = APIRouter()
_lock = threading.Lock()


def registry_of(request: Request):  # type: ignore[no-untyped-def]
    """The app's registry: the running dashboard's (set by ``secroom dashboard run``), or one
    over the database alone, made on the first scrape."""
    from dashboard.metrics import DashboardCollector, DoorDecisions, dashboard_registry

    state = request.app.state
    with _lock:
        registry = getattr(state, "metrics", None)
        if registry is None:
            registry = state.metrics = dashboard_registry(DashboardCollector(
                state.sessionmaker, site=state.settings.site,
                decisions=DoorDecisions(getattr(state, "bus", None))))
    return registry


@router.get("/api/v1/metrics", name="api.metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    from dashboard.metrics import CONTENT_TYPE, render

    body = await anyio.to_thread.run_sync(render, registry_of(request))  # database reads
    return Response(body, media_type=CONTENT_TYPE)
