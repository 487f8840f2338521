"""The ingest's side of version negotiation (controller.compat): a node older than this
dashboard supports, or one whose events it cannot read, is refused with a
``node_version_unsupported`` review item, never silently. Its events are not acknowledged, so
they wait in its journal until it (or the dashboard) is upgraded; the catch-up does not keep
asking such a node for them meanwhile."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.compat import ANNOUNCE_KEY, envelope_problem, node_problem
from dashboard.ingest.state import AnomalySink
from dashboard.models.nodes import Node

KIND = "node_version_unsupported"


def announced(node: Node) -> Any:
    """What the node said it runs in its last state message (None: it did not say)."""
    health = node.health if isinstance(node.health, dict) else {}
    return health.get(ANNOUNCE_KEY)


def problem_of(node: Node) -> str | None:
    return node_problem(announced(node))


def raise_unsupported(pending: AnomalySink, node: str, problem: str,
                      detail: dict[str, Any]) -> None:
    pending.add(KIND, node, node=node, severity="critical",
                subject=f"{node} is not supported: {problem}; its events stay on the node "
                        "until it (or the dashboard) is upgraded",
                detail={"problem": problem[:200], **detail})


def check_state(session: Session, name: str, pending: AnomalySink) -> None:
    """After an approved node's state message: is what it announces supported?"""
    node = session.get(Node, name)
    if node is None or not node.approved:
        return
    problem = problem_of(node)
    if problem is not None:
        version = announced(node)
        raise_unsupported(pending, name, problem,
                          {"announced": version if isinstance(version, dict) else None})


def raise_envelopes(session: Session, unsupported: dict[str, int],
                    pending: AnomalySink) -> None:
    """Events refused as ``bad_version`` (an envelope this dashboard does not read), per
    enrolled node (an unknown node's are the unknown_node item's business)."""
    if not unsupported:
        return
    known = set(session.scalars(select(Node.name).where(Node.name.in_(sorted(unsupported)))))
    for name in sorted(known):
        problem = envelope_problem(unsupported[name]) or "unsupported envelope"
        raise_unsupported(pending, name, problem, {"envelope": unsupported[name]})
