"""The room PCs' pages: the list (state, who is logged on), one PC (sessions, log-ons,
operations, health) and the person-page section (their PC use).

Rows for dashboard.auth.roles.ROLE_MATRIX: hosts.page, hosts.detail (readers)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.auth import scope
from dashboard.hosts import queries as Q
from dashboard.hosts.texts import texts
from dashboard.web import deps

router = APIRouter()
PERSON_DAYS = 7
RECENT = 200


@router.get("/hosts", name="hosts.page", include_in_schema=False)
def hosts_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    now = deps.now(request)
    who = deps.principal(request)
    nodes = scope.site_nodes(db, who)  # a site's account: the PCs of its site
    rows = []
    sessions = Q.pc_sessions(db, now - timedelta(days=1), now + timedelta(seconds=1),
                             nodes=nodes)
    for host in Q.known_hosts(db, now, site=who.site, nodes=nodes):
        open_now = [s for s in sessions if s.host == host and s.open_at(now)]
        rows.append({"host": host, "health": Q.latest_health(db, host, now, nodes),
                     "open": open_now})
    return deps.render(request, "hosts/list.html", {"t": texts(request), "rows": rows})


@router.get("/hosts/{host}", name="hosts.detail", include_in_schema=False)
def host_detail(request: Request, host: str, db: Annotated[DbSession, Depends(deps.db)],
                days: Annotated[int, Query(ge=1, le=92)] = 7) -> Response:
    host = host[:64]
    now = deps.now(request)
    who = deps.principal(request)
    nodes = scope.site_nodes(db, who)
    if host not in Q.known_hosts(db, now, site=who.site, nodes=nodes):
        raise HTTPException(status_code=404, detail=f"no host {host!r}")
    since, until = now - timedelta(days=days), now + timedelta(seconds=1)
    sessions = Q.pc_sessions(db, since, until, host=host, nodes=nodes)
    logons = Q.load(db, Q.LOGON_KINDS, since, until, host=host, limit=RECENT, newest_first=True,
                    nodes=nodes)
    ops = Q.load(db, Q.OPERATION_KINDS, since, until, host=host, limit=RECENT,
                 newest_first=True, nodes=nodes)
    return deps.render(request, "hosts/detail.html", {
        "t": texts(request), "host": host, "days": days, "now": now, "sessions": sessions,
        "logons": logons.events, "ops": ops.events, "health": Q.latest_health(db, host, now, nodes),
        "invalid": logons.invalid + ops.invalid})


def person_context(request: Request, db: DbSession, person_id: str) -> dict[str, Any]:
    """The person page's section: the last week's PC records, by time (``hosts/_person.html``).
    ``Q.pc_timeline`` is what a timeline joins with door, print, USB and number records."""
    now = deps.now(request)
    since = now - timedelta(days=PERSON_DAYS)
    return {"pc_records": {
        "t": texts(request), "person_id": person_id, "days": PERSON_DAYS,
        "sessions": Q.pc_sessions(db, since, now + timedelta(seconds=1), person_id=person_id),
        "events": Q.pc_timeline(db, person_id, since, now + timedelta(seconds=1))[-50:],
    }}
