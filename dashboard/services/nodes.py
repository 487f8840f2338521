"""Node enrolment: approve a pending node's announced key, revoke a node, forget a pending one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from dashboard.models.nodes import Node
from dashboard.services.base import Conflict, NotFound, audit, check_actor, when


def node_dict(n: Node) -> dict[str, Any]:
    return {
        "name": n.name,
        "site": n.site,
        "public_key": n.public_key,
        "key_status": n.key_status,
        "approved_at": n.approved_at,
        "approved_by": n.approved_by,
    }


def _get(session: Session, name: str) -> Node:
    node = session.get(Node, name)
    if node is None:
        raise NotFound(f"no node {name!r}")
    return node


def approve_node(
    session: Session,
    actor: str,
    name: str,
    *,
    public_key: str | None = None,
    now: datetime | None = None,
) -> Node:
    """Trust the key the node announced. Pass ``public_key`` (as shown to the admin) to make sure
    the key approved is the one that was checked, not one swapped in since."""
    check_actor(actor)
    at = when(now)
    node = _get(session, name)
    if node.public_key is None:
        raise Conflict(f"node {name!r} has not announced a public key yet")
    if public_key is not None and public_key != node.public_key:
        raise Conflict(f"node {name!r} now announces a different key; check it again")
    if node.key_status == "approved":
        raise Conflict(f"node {name!r} is already approved")
    before = node_dict(node)
    node.key_status, node.approved_at, node.approved_by = "approved", at, actor
    session.flush()
    audit(session, actor, "node.approve", "node", name, before, node_dict(node), at)
    return node


def revoke_node(session: Session, actor: str, name: str, *, now: datetime | None = None) -> Node:
    """Stop accepting the node's events (its stored events stay)."""
    check_actor(actor)
    at = when(now)
    node = _get(session, name)
    if node.key_status == "revoked":
        raise Conflict(f"node {name!r} is already revoked")
    before = node_dict(node)
    node.key_status = "revoked"
    session.flush()
    audit(session, actor, "node.revoke", "node", name, before, node_dict(node), at)
    return node


def reject_pending_node(
    session: Session, actor: str, name: str, *, now: datetime | None = None
) -> None:
    """Forget a pending node that nobody recognises (only if it has no stored events)."""
    check_actor(actor)
    at = when(now)
    node = _get(session, name)
    if node.key_status != "pending" or node.events_stored:
        raise Conflict(f"node {name!r} is not a pending node without events")
    before = node_dict(node)
    session.delete(node)
    session.flush()
    audit(session, actor, "node.reject", "node", name, before, None, at)
