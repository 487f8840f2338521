"""A node key's life after approval: rotation and revocation.

Rotation, two ways. The node rotates (`secroom keys rotate`, then a restart): its journal signs
with the new key from a seq on and announces the handover signed by the old key
(``controller.keys.rotation_statement``); the ingest's state handler accepts it from the node's
approved key (``record_handover``) with no admin step. Or the node lost its key and announces a
new one with no handover: an admin approves that key (``approve_new_key``); it signs from the
seq after the last one stored. Either way the old key becomes *retired*: it still verifies the
events below the handover (those in flight at the rotation), never one above.

Revocation: ``revoke_key`` on the current key revokes the node (``revoke_node``); on a retired
key it stops even the events below its handover. A revoked key's events are refused
(``key_revoked``), counted and raised, and a revoked key is never approved again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models.nodes import Node, NodeKey
from dashboard.services.base import Conflict, NotFound, check_actor, rights_changed, when
from dashboard.services.nodes import get_node, node_dict, revoke_node, was_revoked


def _retire(session: Session, node: Node, until_seq: int, by: str, at: datetime,
            status: str = "retired") -> None:
    assert node.public_key is not None
    session.add(NodeKey(node=node.name, public_key=node.public_key, from_seq=node.key_since_seq,
                        until_seq=until_seq, status=status, replaced_at=at, replaced_by=by,
                        revoked_at=at if status == "revoked" else None,
                        revoked_by=by if status == "revoked" else None))


def record_handover(session: Session, node: Node, new_key: str, from_seq: int,
                    at: datetime) -> None:
    """The node's approved key handed over to ``new_key`` from ``from_seq`` (the statement's
    signature was checked by the caller)."""
    actor = f"node:{node.name}"[:64]
    before = node_dict(node)
    _retire(session, node, from_seq, actor, at)
    node.public_key, node.key_since_seq, node.announced_key = new_key, from_seq, None
    session.flush()
    rights_changed(session, actor, "node.key_rotate", "node", node.name, before,
                   node_dict(node), at)


def approve_new_key(
    session: Session, actor: str, name: str, public_key: str, *, revoke_old: bool = False,
    now: datetime | None = None,
) -> Node:
    """Make the key an approved node announces without a handover its new key; it signs from
    the seq after the last one stored. ``revoke_old``: the old key was lost or stolen, so
    even its events in flight are refused."""
    check_actor(actor)
    at = when(now)
    node = get_node(session, name)
    if node.key_status != "approved":
        raise Conflict(f"node {name!r} is not approved; approve it on the nodes page")
    if node.announced_key is None or node.announced_key != public_key:
        raise Conflict(f"node {name!r} does not announce that key; check it again")
    if was_revoked(session, name, public_key):
        raise Conflict(f"that key of node {name!r} was revoked")
    before = node_dict(node)
    _retire(session, node, node.max_seq + 1, actor, at, "revoked" if revoke_old else "retired")
    node.public_key, node.key_since_seq, node.announced_key = public_key, node.max_seq + 1, None
    session.flush()
    rights_changed(session, actor, "node.key_approve", "node", name, before, node_dict(node), at)
    return node


def revoke_key(
    session: Session, actor: str, name: str, public_key: str, *, now: datetime | None = None
) -> Node:
    check_actor(actor)
    at = when(now)
    node = get_node(session, name)
    if public_key == node.public_key:
        return revoke_node(session, actor, name, now=at)
    row = session.scalars(select(NodeKey).where(
        NodeKey.node == name, NodeKey.public_key == public_key)).first()
    if row is None:
        raise NotFound(f"node {name!r} never had that key")
    if row.status == "revoked":
        raise Conflict(f"that key of node {name!r} is already revoked")
    before = {"public_key": public_key, "status": row.status}
    row.status, row.revoked_at, row.revoked_by = "revoked", at, actor
    session.flush()
    rights_changed(session, actor, "node.key_revoke", "node", name, before,
                   {"public_key": public_key, "status": "revoked"}, at)
    return node


def key_history(session: Session, name: str) -> list[NodeKey]:
    return list(session.scalars(
        select(NodeKey).where(NodeKey.node == name).order_by(NodeKey.from_seq, NodeKey.id)))
