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
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.envelope import parse_ts
from controller.keys import KeyFileError, open_rotation, public_from_b64
from dashboard.models.nodes import Node
from dashboard.node_policy import policy_anomaly
from dashboard.services.node_keys import record_handover


class AnomalySink(Protocol):
    """Where the state handler reports what it finds (the ingest batch's pending anomalies)."""

    def add(self, kind: str, key: str, *, node: str | None, subject: str, severity: str,
            detail: dict[str, Any] | None = None) -> None: ...

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
    # the dashboard's composition root sets this from ``clock_skew_s`` in its settings
    clock_skew_s: float

    def __init__(self, *, site: str, max_payload: int, max_pending: int) -> None:
        self.clock_skew_s = CLOCK_SKEW_S
        self.site = site
        self.max_bytes = min(max_payload, MAX_STATE_BYTES)
        self.max_pending = max_pending

    def apply(
        self, session: Session, name: str, payload: bytes, now: datetime, pending: AnomalySink
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
        health = {k: v for k, v in raw.items()
                  if k not in ("state", "public_key", "key_rotation")}
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
            if node.key_status == "approved" and "key_rotation" in raw:
                _handover(session, node, key, raw["key_rotation"], self.site, now, pending)
            if node.key_status == "approved" and key != node.public_key:
                node.announced_key = key  # an admin may approve it (a lost key replaced)
                pending.add(
                    "node_key_mismatch",
                    name,
                    node=name,
                    severity="critical",
                    subject=f"{name} announces a key that differs from its enrolled key",
                    detail={"announced": key},
                )
            elif node.key_status != "approved":
                node.public_key = key
        old = node.health if isinstance(node.health, dict) else {}
        approved = node.key_status == "approved"  # only an enrolled node's faults are raised
        if approved:
            _health_anomalies(name, old, health, pending)
            policy_anomaly(session, name, raw.get("policy"), now, pending)
        offset = _clock_offset(raw.get("ts"), now)
        if offset is not None:
            health["clock_offset_s"] = offset
            node.clock_offset_s = offset
            # a retained state replayed at our (re)connect carries an old ts: only a skew seen
            # again in a newer message (another ts) is the node's clock
            before = old.get("clock_offset_s") if old.get("ts") != raw.get("ts") else None
            if (
                approved
                and abs(offset) > self.clock_skew_s
                and isinstance(before, int | float)
                and abs(before) > self.clock_skew_s
            ):
                pending.add(
                    "clock_skew",
                    name,
                    node=name,
                    severity="warning",
                    subject=f"{name}: clock {offset:+.0f} s off the dashboard's",
                    detail={"offset_s": offset, "node_clock": str(raw.get("ts"))[:32]},
                )
        node.state = raw["state"]
        node.state_at = now
        node.last_seen_at = now
        node.health = health
        return None


def _handover(session: Session, node: Node, key: str, statement: Any, site: str,
              now: datetime, pending: AnomalySink) -> None:
    """Accept the node's signed key handover (controller.keys) from its approved key to
    ``key``; a statement that does not verify is raised (the key stays as it was)."""
    try:
        old, new, from_seq = open_rotation(statement, node=node.name, site=site)
        if old != node.public_key or new != key:
            raise KeyFileError("the handover is not from the approved key to the announced one")
        if from_seq < node.key_since_seq or from_seq <= node.contiguous_seq:
            raise KeyFileError("the handover starts below events the approved key signed")
    except KeyFileError as exc:
        pending.add("key_rotation_refused", node.name, node=node.name, severity="critical",
                    subject=f"{node.name}: key handover refused", detail={"why": str(exc)[:200]})
        return
    record_handover(session, node, new, from_seq, now)
    pending.add("node_key_rotated", f"{node.name}:{from_seq}", node=node.name, severity="info",
                subject=f"{node.name} rotated its key", detail={"from_seq": from_seq,
                                                                "public_key": new})


CLOCK_SKEW_S = 120.0  # beyond network delay and NTP slew; log times this far off mislead


def _clock_offset(ts: Any, now: datetime) -> float | None:
    """The node's clock minus ours (seconds, + = node ahead), from the state message's ts."""
    if not isinstance(ts, str):
        return None
    try:
        when = parse_ts(ts)
    except ValueError:
        return None
    return round((when - now).total_seconds(), 3)


def _count(health: dict[str, Any], *path: str) -> int:
    value: Any = health.get("health")
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _health_anomalies(
    name: str, old: dict[str, Any], new: dict[str, Any], pending: AnomalySink
) -> None:
    """Raise what a node can only report in its health: journal failures (disk full), doors
    kept shut because an access could not be journaled, and lost broker connections (an
    outage sends no event). Counters restart with the node's boot."""
    same_boot = old.get("boot") == new.get("boot")

    def grew(*path: str) -> int:
        return _count(new, *path) - (_count(old, *path) if same_boot else 0)

    if grew("counters", "journal_failures") > 0:
        pending.add(
            "journal_failure",
            name,
            node=name,
            severity="critical",
            subject=f"{name}: its journal could not record events (disk full or broken)",
            detail={
                "journal_failures": _count(new, "counters", "journal_failures"),
                "denied_unrecorded": _count(new, "counters", "denied_unrecorded"),
            },
        )
    if grew("mqtt", "disconnects") > 0:
        pending.add(
            "broker_link",
            name,
            node=name,
            severity="warning",
            subject=f"{name} lost its connection to the broker",
            detail={"disconnects": _count(new, "mqtt", "disconnects")},
        )
