"""Which key signs a node's seq, and which kinds a node may report: the ingest's checks of what
an admin approved (dashboard.services.nodes, dashboard.services.node_keys).

A node's current key signs from ``Node.key_since_seq`` on; below it, the retired key of that
range (``node_keys``: events journaled before a rotation and still in flight). A revoked key
signs nothing: its events are refused (``key_revoked``). A kind is accepted only from a node
whose approved roles may emit it (``controller.events.may_emit``); a kind that no release
registers is stored as ``unknown_kind`` (a newer node's, never projected), as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.envelope import Event
from controller.events import KINDS, may_emit
from dashboard.models.nodes import Node, NodeKey

REVOKED = "revoked"  # signer(): the key that signed this seq was revoked


def past_keys(session: Session, nodes: dict[str, Node]) -> dict[str, list[NodeKey]]:
    """The earlier keys of the nodes that have any (rotated or revoked): one query."""
    names = [n.name for n in nodes.values() if n.key_since_seq > 1 or n.key_status == "revoked"]
    out: dict[str, list[NodeKey]] = defaultdict(list)
    if names:
        for row in session.scalars(select(NodeKey).where(NodeKey.node.in_(names))):
            out[row.node].append(row)
    return out


@dataclass(frozen=True, slots=True)
class Approval:
    """What the checks read of a node, read once per batch (not once per event: the ORM's
    attribute access and the roles' parsing cost more than the checks themselves)."""

    name: str
    revoked: bool
    approved: bool
    key_since_seq: int
    public_key: str | None
    roles: frozenset[str]
    allowed: dict[str, bool] = field(default_factory=dict)  # kind -> may emit (memo)

    @classmethod
    def of(cls, node: Node) -> Approval:
        return cls(node.name, node.key_status == "revoked", node.approved, node.key_since_seq,
                   node.public_key, node.role_set)


def signer(node: Approval, seq: int, past: Sequence[NodeKey]) -> str | None:
    """The key that signs ``seq`` of ``node`` (base64url), REVOKED, or None (not approved)."""
    if node.revoked:
        return REVOKED
    if not node.approved:
        return None
    if seq >= node.key_since_seq:
        return node.public_key
    for row in past:
        if row.from_seq <= seq < row.until_seq:
            return REVOKED if row.status == "revoked" else row.public_key
    return node.public_key  # no earlier key covers it: its signature fails


def kind_refusal(node: Approval, event: Event) -> dict[str, Any] | None:
    """None if the node's roles allow ``event.kind``; else the anomaly's subject and detail."""
    allowed = node.allowed.get(event.kind)
    if allowed is None:
        allowed = node.allowed[event.kind] = (event.kind not in KINDS
                                              or may_emit(event.kind, node.roles))
    if allowed:
        return None
    roles = node.roles
    return {
        "subject": (f"{node.name}: {event.kind} refused, not a kind its roles may report"
                    if roles else f"{node.name}: events refused, the node has no role yet"),
        "detail": {"kind": event.kind, "roles": sorted(roles), "last_seq": event.seq},
    }
