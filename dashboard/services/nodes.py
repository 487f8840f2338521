"""Node enrolment: approve a pending node's announced key for its roles, change its roles,
revoke a node, forget a pending one. Its keys' life after approval (rotation, revocation of an
old key) is in ``dashboard.services.node_keys``.

Every change re-signs the policy: it lists each approved node with its roles and key
(``controller.policy.NodeGrant``), so the nodes see what the dashboard approved them for.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.events import parse_roles
from dashboard.models.nodes import Node, NodeKey
from dashboard.services.base import (
    Conflict,
    NotFound,
    ServiceError,
    audit,
    check_actor,
    rights_changed,
    when,
)


def node_dict(n: Node) -> dict[str, Any]:
    return {
        "name": n.name,
        "site": n.site,
        "public_key": n.public_key,
        "key_status": n.key_status,
        "roles": sorted(n.role_set),
        "key_since_seq": n.key_since_seq,
        "approved_at": n.approved_at,
        "approved_by": n.approved_by,
    }


def get_node(session: Session, name: str) -> Node:
    node = session.get(Node, name)
    if node is None:
        raise NotFound(f"no node {name!r}")
    return node


def roles_text(roles: Iterable[str] | str) -> str:
    """The stored form of ``roles``; at least one known role, else ServiceError."""
    try:
        parsed = parse_roles(roles)
    except ValueError as exc:
        raise ServiceError(str(exc)) from exc
    if not parsed:
        raise ServiceError("choose at least one role for the node (what it may report)")
    return ",".join(sorted(parsed))


def was_revoked(session: Session, name: str, public_key: str) -> bool:
    return session.scalar(
        select(NodeKey.id).where(NodeKey.node == name, NodeKey.public_key == public_key,
                                 NodeKey.status == "revoked").limit(1)) is not None


def approve_node(
    session: Session,
    actor: str,
    name: str,
    *,
    roles: Iterable[str] | str,
    public_key: str | None = None,
    now: datetime | None = None,
) -> Node:
    """Trust the key the node announced, for ``roles`` (what it may report). Pass ``public_key``
    (as shown to the admin) to make sure the key approved is the one that was checked, not one
    swapped in since. A revoked node comes back only with a new key, which signs from the seq
    after the last one stored."""
    check_actor(actor)
    at = when(now)
    stored_roles = roles_text(roles)
    node = get_node(session, name)
    if node.public_key is None:
        raise Conflict(f"node {name!r} has not announced a public key yet")
    if public_key is not None and public_key != node.public_key:
        raise Conflict(f"node {name!r} now announces a different key; check it again")
    if node.key_status == "approved":
        raise Conflict(f"node {name!r} is already approved")
    if was_revoked(session, name, node.public_key):
        raise Conflict(f"node {name!r} still announces its revoked key; give it a new key "
                       "(`secroom keys init --force` on the node) and approve that one")
    before = node_dict(node)
    if node.key_status == "revoked" or node.events_stored:
        node.key_since_seq = node.max_seq + 1
    node.key_status, node.approved_at, node.approved_by = "approved", at, actor
    node.roles = stored_roles
    node.announced_key = None
    session.flush()
    rights_changed(session, actor, "node.approve", "node", name, before, node_dict(node), at)
    return node


def set_node_roles(
    session: Session, actor: str, name: str, roles: Iterable[str] | str, *,
    now: datetime | None = None,
) -> Node:
    """Change what an enrolled node may report. Events it sent meanwhile that its old roles
    refused are still in its journal: the dashboard asks for them again and now stores them."""
    check_actor(actor)
    at = when(now)
    stored_roles = roles_text(roles)
    node = get_node(session, name)
    if node.roles == stored_roles:
        return node
    before = node_dict(node)
    node.roles = stored_roles
    session.flush()
    rights_changed(session, actor, "node.roles", "node", name, before, node_dict(node), at)
    return node


def revoke_node(session: Session, actor: str, name: str, *, now: datetime | None = None) -> Node:
    """Stop accepting the node's events: its current key is revoked (its events are refused
    as ``key_revoked``, counted and raised); its stored events stay."""
    check_actor(actor)
    at = when(now)
    node = get_node(session, name)
    if node.key_status == "revoked":
        raise Conflict(f"node {name!r} is already revoked")
    before = node_dict(node)
    if node.key_status == "approved" and node.public_key:
        session.add(NodeKey(node=name, public_key=node.public_key, from_seq=node.key_since_seq,
                            until_seq=2**62, status="revoked", replaced_at=at,
                            replaced_by=actor, revoked_at=at, revoked_by=actor))
    node.key_status = "revoked"
    session.flush()
    rights_changed(session, actor, "node.revoke", "node", name, before, node_dict(node), at)
    return node


def reject_pending_node(
    session: Session, actor: str, name: str, *, now: datetime | None = None
) -> None:
    """Forget a pending node that nobody recognises (only if it has no stored events)."""
    check_actor(actor)
    at = when(now)
    node = get_node(session, name)
    if node.key_status != "pending" or node.events_stored:
        raise Conflict(f"node {name!r} is not a pending node without events")
    before = node_dict(node)
    session.delete(node)
    session.flush()
    audit(session, actor, "node.reject", "node", name, before, None, at)
