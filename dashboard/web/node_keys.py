"""A node's roles and its keys' life, from the nodes page and the API: change the roles, revoke
the node, approve the new key it announces without a handover (a lost key replaced), revoke an
old key. A node's own rotation (`secroom keys rotate`) needs no step here: its handover, signed
by the approved key, is accepted by the ingest (``dashboard.services.node_keys``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from controller.events import NodeRole
from dashboard import services
from dashboard.auth import scope
from dashboard.auth.service import Principal
from dashboard.models import Node
from dashboard.services.node_keys import key_history
from dashboard.web import deps
from dashboard.web.nodes import NodeOut, _page, node_out

router = APIRouter()
Db = Annotated[DbSession, Depends(deps.db)]
Who = Annotated[Principal, Depends(deps.principal)]


def _form(request: Request, db: DbSession, fn: object, *args: object, **kw: object) -> Response:
    try:
        deps.change(db, fn, *args, now=deps.now(request), **kw)  # type: ignore[arg-type]
    except HTTPException as exc:
        return _page(request, db, str(exc.detail), exc.status_code)
    return RedirectResponse("/nodes?msg=common.saved", status_code=303)


@router.post("/nodes/{name}/roles", name="nodes.roles", include_in_schema=False)
def nodes_roles(request: Request, name: str, db: Db, who: Who,
                roles: Annotated[list[str] | None, Form()] = None) -> Response:
    scope.require_node(db, who, name)
    return _form(request, db, services.set_node_roles, who.username, name, roles or [])


@router.post("/nodes/{name}/revoke", name="nodes.revoke", include_in_schema=False)
def nodes_revoke(request: Request, name: str, db: Db, who: Who) -> Response:
    scope.require_node(db, who, name)
    return _form(request, db, services.revoke_node, who.username, name)


@router.post("/nodes/{name}/key/approve", name="nodes.key_approve", include_in_schema=False)
def nodes_key_approve(request: Request, name: str, db: Db, who: Who,
                      revoke_old: Annotated[bool, Form()] = False) -> Response:
    scope.require_node(db, who, name)
    key = request.query_params.get("key", "")
    return _form(request, db, services.approve_new_key, who.username, name, key,
                 revoke_old=revoke_old)


@router.post("/nodes/{name}/key/revoke", name="nodes.key_revoke", include_in_schema=False)
def nodes_key_revoke(request: Request, name: str, db: Db, who: Who) -> Response:
    scope.require_node(db, who, name)
    key = request.query_params.get("key", "")
    return _form(request, db, services.revoke_key, who.username, name, key)


class RolesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roles: list[NodeRole] = Field(min_length=1)


class NewKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public_key: str = Field(min_length=43, max_length=43)
    revoke_old: bool = False


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public_key: str = Field(min_length=43, max_length=43)


class KeyOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public_key: str
    from_seq: int
    until_seq: int | None  # None: the current key
    status: str  # approved (current) | retired | revoked
    replaced_at: datetime | None
    replaced_by: str | None


@router.put("/api/v1/nodes/{name}/roles", name="api.nodes.roles", response_model=NodeOut,
            responses=deps.ERRORS, tags=["nodes"])
def nodes_roles_api(request: Request, name: str, body: RolesIn, db: Db, who: Who) -> NodeOut:
    scope.require_node(db, who, name)
    deps.change(db, services.set_node_roles, who.username, name, list(body.roles),
                now=deps.now(request))
    return node_out(db, name)


@router.post("/api/v1/nodes/{name}/revoke", name="api.nodes.revoke", response_model=NodeOut,
             responses=deps.ERRORS, tags=["nodes"])
def nodes_revoke_api(request: Request, name: str, db: Db, who: Who) -> NodeOut:
    scope.require_node(db, who, name)
    deps.change(db, services.revoke_node, who.username, name, now=deps.now(request))
    return node_out(db, name)


@router.post("/api/v1/nodes/{name}/key", name="api.nodes.key_approve", response_model=NodeOut,
             responses=deps.ERRORS, tags=["nodes"])
def nodes_key_approve_api(request: Request, name: str, body: NewKeyIn, db: Db,
                          who: Who) -> NodeOut:
    scope.require_node(db, who, name)
    deps.change(db, services.approve_new_key, who.username, name, body.public_key,
                revoke_old=body.revoke_old, now=deps.now(request))
    return node_out(db, name)


@router.post("/api/v1/nodes/{name}/keys/revoke", name="api.nodes.key_revoke",
             response_model=NodeOut, responses=deps.ERRORS, tags=["nodes"])
def nodes_key_revoke_api(request: Request, name: str, body: KeyIn, db: Db, who: Who) -> NodeOut:
    scope.require_node(db, who, name)
    deps.change(db, services.revoke_key, who.username, name, body.public_key,
                now=deps.now(request))
    return node_out(db, name)


@router.get("/api/v1/nodes/{name}/keys", name="api.nodes.keys", response_model=list[KeyOut],
            responses=deps.ERRORS, tags=["nodes"])
def nodes_keys_api(name: str, db: Db, who: Who) -> list[KeyOut]:
    scope.require_node(db, who, name)
    node = db.get(Node, name)
    if node is None:
        raise HTTPException(status_code=404, detail=f"no node {name!r}")
    out = [KeyOut(public_key=k.public_key, from_seq=k.from_seq, until_seq=k.until_seq,
                  status=k.status, replaced_at=k.replaced_at, replaced_by=k.replaced_by)
           for k in key_history(db, name)]
    if node.public_key and node.key_status == "approved":
        out.append(KeyOut(public_key=node.public_key, from_seq=node.key_since_seq,
                          until_seq=None, status="approved", replaced_at=None, replaced_by=None))
    return out
