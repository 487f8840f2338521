"""Retained state messages: online/offline, health, and the node's public key for enrolment.

Contract (nodes -> dashboard), topic ``secroom/v1/{site}/{node}/state``, retained JSON object:
``{"state": "online"|"offline", "public_key": "<43 chars base64url Ed25519>", ...health}``.
An unknown node announcing a key becomes a *pending* node (an admin approves it); a known,
approved node announcing a different key raises a critical anomaly and its key is kept.
State messages are not signed: they never change an approved key and carry no events.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.keys import KeyFileError, public_from_b64
from dashboard.models.nodes import Node

if TYPE_CHECKING:
    from dashboard.ingest.core import _Pending

_NODE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_STATE_BYTES = 8 * 1024


def _valid_key(text: Any) -> str | None:
    if not isinstance(text, str) or len(text) != 43:
        return None
    try:
        public_from_b64(text)
    except KeyFileError:
        return None
    return text


class StateHandler:
    def __init__(self, *, site: str, max_payload: int, max_pending: int) -> None:
        self.site = site
        self.max_bytes = min(max_payload, MAX_STATE_BYTES)
        self.max_pending = max_pending

    def apply(
        self, session: Session, name: str, payload: bytes, now: datetime, pending: _Pending
    ) -> str | None:
        """Apply one state message; return a reject reason or None."""
        if not _NODE_NAME.match(name):
            return "bad_topic"
        if not payload:  # a retained message being cleared
            return None
        if len(payload) > self.max_bytes:
            return "oversized"
        try:
            raw = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "bad_state"
        if not isinstance(raw, dict) or raw.get("state") not in ("online", "offline"):
            return "bad_state"
        key = _valid_key(raw.get("public_key"))
        if "public_key" in raw and key is None:
            return "bad_state"
        health = {k: v for k, v in raw.items() if k not in ("state", "public_key")}
        node = session.get(Node, name)
        if node is None:
            if key is None:
                pending.add(
                    "unknown_node",
                    "site",
                    node=None,
                    severity="critical",
                    subject="state from a node that is not enrolled",
                    detail={"last_node": name},
                )
                return "unknown_node"
            count = session.scalar(
                select(func.count()).select_from(Node).where(Node.key_status == "pending")
            )
            if (count or 0) >= self.max_pending:
                pending.add(
                    "unknown_node",
                    "site",
                    node=None,
                    severity="critical",
                    subject="too many nodes awaiting enrolment",
                    detail={"last_node": name},
                )
                return "unknown_node"
            node = Node(
                name=name,
                site=self.site,
                public_key=key,
                key_status="pending",
                first_seen_at=now,
                contiguous_seq=0,
                max_seq=0,
                events_stored=0,
                state="unknown",
                health={},
            )
            session.add(node)
            pending.add(
                "node_enrolment",
                name,
                node=name,
                severity="info",
                subject=f"{name} asks to be enrolled",
                detail={"public_key": key},
            )
        elif key is not None and key != node.public_key:
            if node.key_status == "approved":
                pending.add(
                    "node_key_mismatch",
                    name,
                    node=name,
                    severity="critical",
                    subject=f"{name} announces a key that differs from its enrolled key",
                    detail={"announced": key},
                )
            else:
                node.public_key = key
        node.state = raw["state"]
        node.state_at = now
        node.last_seen_at = now
        node.health = health
        return None
