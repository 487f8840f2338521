"""Nodes: online or offline, last seen, clock state, policy version applied, software version,
roles, keys to approve (with the roles the node is approved for). Changing a node's roles and
its keys' life (rotation, revocation) are in ``dashboard.web.node_keys``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from controller.events import NODE_ROLES, NodeRole
from dashboard import services
from dashboard.auth import scope
from dashboard.auth.service import Principal
from dashboard.ingest import compat
from dashboard.models import Node, PolicyVersion
from dashboard.web import deps

router = APIRouter()


class NodeOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    site: str
    key_status: str
    public_key: str | None
    roles: list[str] = []  # what it may report (controller.events.NodeRole)
    key_since_seq: int = 1  # the first seq its current key signs (after a rotation)
    announced_key: str | None = None  # a different key it announces, without a handover
    state: str
    last_seen_at: datetime | None
    clock_state: str | None
    clock_offset_s: float | None
    policy_version: int | None
    policy_current: bool
    contiguous_seq: int
    max_seq: int
    events_stored: int
    # the software the node announces (controller.compat; None: a node of the release before
    # announcements) and whether this dashboard supports it
    software: str | None = None
    version_supported: bool = True
    # what the node reports in its health that needs a look: (locale key, count or name)
    problems: list[tuple[str, str]] = []


def _problems(health: object) -> list[tuple[str, str]]:
    """Journal failures, doors kept shut for it, lost broker links (this boot), individual
    numbers the journal replaced in events (this boot), readers down."""
    inner = health.get("health") if isinstance(health, dict) else None
    if not isinstance(inner, dict):
        return []
    out: list[tuple[str, str]] = []
    counters = inner.get("counters") if isinstance(inner.get("counters"), dict) else {}
    mqtt = inner.get("mqtt") if isinstance(inner.get("mqtt"), dict) else {}
    for key, value in (
        ("nodes.journal_failures", counters.get("journal_failures")),
        ("nodes.denied_unrecorded", counters.get("denied_unrecorded")),
        ("nodes.broker_disconnects", mqtt.get("disconnects")),
        ("nodes.numbers_removed", inner.get("numbers_removed")),
    ):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            out.append((key, str(value)))
    readers = inner.get("readers") if isinstance(inner.get("readers"), dict) else {}
    out.extend(("nodes.reader_down", str(r)[:64]) for r, up in readers.items() if up is False)
    return out


def _software(node: Node) -> str | None:
    said = compat.announced(node)
    software = said.get("software") if isinstance(said, dict) else None
    return software[:32] if isinstance(software, str) else None


def _latest_policy(db: DbSession) -> int | None:
    return db.scalar(select(func.max(PolicyVersion.version)))


def _nodes(db: DbSession, who: Principal | None) -> tuple[list[NodeOut], int | None]:
    """Every node the caller's scope holds (``who`` None: every node)."""
    latest = _latest_policy(db)
    out = [
        NodeOut(
            name=n.name, site=n.site, key_status=n.key_status, public_key=n.public_key,
            roles=sorted(n.role_set), key_since_seq=n.key_since_seq,
            announced_key=n.announced_key,
            state=n.state, last_seen_at=n.last_seen_at, clock_state=n.clock_state,
            clock_offset_s=n.clock_offset_s, policy_version=n.policy_version,
            policy_current=latest is not None and n.policy_version == latest,
            contiguous_seq=n.contiguous_seq, max_seq=n.max_seq, events_stored=n.events_stored,
            problems=_problems(n.health), software=_software(n),
            version_supported=compat.problem_of(n) is None,
        )
        for n in db.scalars(select(Node).order_by(Node.name) if who is None else
                            scope.only_site(select(Node).order_by(Node.name), who, Node.name))
    ]
    return out, latest


def _page(request: Request, db: DbSession, error: str = "", status: int = 200) -> Response:
    nodes, latest = _nodes(db, deps.principal(request))
    return deps.render(request, "nodes.html", {
        "nodes": nodes, "latest": latest, "error": error,
        "pending": [n for n in nodes if n.key_status == "pending" and n.public_key],
        "all_roles": sorted(NODE_ROLES),
    }, status)


@router.get("/nodes", name="nodes.page", include_in_schema=False)
def nodes_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    return _page(request, db)


def _decide(request: Request, db: DbSession, who: Principal, name: str, approve: bool,
            key: str | None, roles: list[str] | None = None) -> Node | None:
    scope.require_node(db, who, name)
    if approve:
        return deps.change(db, services.approve_node, who.username, name, public_key=key,
                           roles=roles or [], now=deps.now(request))
    return deps.change(db, services.reject_pending_node, who.username, name,
                       now=deps.now(request))


@router.post("/nodes/{name}/approve", name="nodes.approve", include_in_schema=False)
def nodes_approve(
    request: Request, name: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    form_key = request.query_params.get("key")
    try:
        _decide(request, db, who, name, True, form_key, roles)
    except HTTPException as exc:
        return _page(request, db, str(exc.detail), exc.status_code)
    return RedirectResponse("/nodes?msg=common.saved", status_code=303)


@router.post("/nodes/{name}/reject", name="nodes.reject", include_in_schema=False)
def nodes_reject(
    request: Request, name: str, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> Response:
    try:
        _decide(request, db, who, name, False, None)
    except HTTPException as exc:
        return _page(request, db, str(exc.detail), exc.status_code)
    return RedirectResponse("/nodes?msg=common.saved", status_code=303)


@router.get("/api/v1/nodes", name="api.nodes.list", response_model=list[NodeOut], tags=["nodes"])
def nodes_api(db: Annotated[DbSession, Depends(deps.db)],
              who: Annotated[Principal, Depends(deps.principal)]) -> list[NodeOut]:
    return _nodes(db, who)[0]


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public_key: str
    roles: list[NodeRole] = Field(min_length=1)


@router.post("/api/v1/nodes/{name}/approve", name="api.nodes.approve", response_model=NodeOut,
             responses=deps.ERRORS, tags=["nodes"])
def nodes_approve_api(
    request: Request, name: str, body: ApproveIn, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> NodeOut:
    _decide(request, db, who, name, True, body.public_key, list(body.roles))
    return node_out(db, name)


def node_out(db: DbSession, name: str) -> NodeOut:
    return next(n for n in _nodes(db, None)[0] if n.name == name)
