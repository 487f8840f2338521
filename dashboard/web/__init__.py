"""Server-rendered pages and the JSON API, one router per resource."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from dashboard.backups import web as backups
    from dashboard.correlation import web as correlation
    from dashboard.media import web as media
    from dashboard.numlog import web as numlog
    from dashboard.printing import web as printing
    from dashboard.reports import web as reports
    from dashboard.web import (
        anomalies,
        audit,
        door_log,
        doors,
        groups,
        live,
        lockdown,
        nodes,
        overview,
        people,
        presence,
        printers,
        system,
        users,
    )

    return [
        system.router, overview.router, door_log.router, presence.router, nodes.router,
        people.router, groups.router, doors.router, printers.router, lockdown.router,
        anomalies.router, audit.router, users.router, live.router,
        printing.router, backups.router, media.router, numlog.router, correlation.router,
        reports.router,
    ]
