"""Raise, de-duplicate, acknowledge and resolve anomalies.

An anomaly is identified by ``dedupe_key`` while it is open: raising it again bumps ``count`` and
``last_seen_at`` instead of adding a row, so a flood of bad payloads yields one alarm with a count.
Once acknowledged (with a reason) or resolved, a new occurrence opens a new anomaly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.audit import append_audit, jsonable
from dashboard.models.anomalies import ANOMALY_STATES, Anomaly
from dashboard.textguard import guard_text

SEVERITIES = ("info", "warning", "critical")


class AnomalyError(ValueError):
    """An anomaly action is not possible (unknown id, wrong state, missing reason)."""


def raise_anomaly(
    session: Session,
    kind: str,
    *,
    dedupe_key: str,
    now: datetime,
    subject: str = "",
    detail: dict[str, Any] | None = None,
    node: str | None = None,
    severity: str = "warning",
    count: int = 1,
    at: datetime | None = None,
    person_id: str | None = None,
    place: str | None = None,
    host: str | None = None,
) -> tuple[Anomaly, bool]:
    """Open an anomaly or bump the open one with the same key. Returns (anomaly, created).

    ``at`` is when it happened (default ``now``); ``person_id``, ``place`` (a door; default the
    detail's ``door``) and ``host`` are what the review queue filters on."""
    if severity not in SEVERITIES:
        raise AnomalyError(f"unknown severity {severity!r}")
    key = f"{kind}:{dedupe_key}"[:255]
    existing = session.scalars(
        select(Anomaly).where(Anomaly.dedupe_key == key, Anomaly.state == "open").limit(1)
    ).first()
    if existing is not None:
        existing.count += count
        existing.last_seen_at = max(existing.last_seen_at, now)
        if detail:
            existing.detail = {**existing.detail, **jsonable(detail)}
        return existing, False
    anomaly = Anomaly(
        kind=kind,
        severity=severity,
        node=node,
        subject=subject[:255],
        detail=jsonable(detail or {}),
        dedupe_key=key,
        count=count,
        state="open",
        first_seen_at=now,
        last_seen_at=now,
        at=at or _when((detail or {}).get("at")) or now,
        person_id=person_id,
        place=place or _text((detail or {}).get("door")),
        host=host or _text((detail or {}).get("host")),
    )
    session.add(anomaly)
    session.flush()
    return anomaly, True


def _when(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return value if isinstance(value, datetime) and value.tzinfo is not None else None


def _text(value: object) -> str | None:
    return value[:128] if isinstance(value, str) and value else None


def anomaly_dict(a: Anomaly) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "severity": a.severity,
        "node": a.node,
        "subject": a.subject,
        "detail": a.detail,
        "count": a.count,
        "state": a.state,
        "first_seen_at": a.first_seen_at,
        "last_seen_at": a.last_seen_at,
        "acknowledged_at": a.acknowledged_at,
        "acknowledged_by": a.acknowledged_by,
        "reason": a.reason,
        "resolved_at": a.resolved_at,
        "at": a.at,
        "person_id": a.person_id,
        "place": a.place,
        "host": a.host,
        "assignee": a.assignee,
        "escalated_at": a.escalated_at,
        "escalated_by": a.escalated_by,
    }


def _transition(
    session: Session, actor: str, anomaly_id: int, reason: str, now: datetime, to: str
) -> Anomaly:
    assert to in ANOMALY_STATES
    reason = guard_text((reason or "").strip(), "reason")
    if not reason:
        raise AnomalyError("a reason is required")
    if len(reason) > 2000:
        raise AnomalyError("reason is longer than 2000 characters")
    anomaly = session.get(Anomaly, anomaly_id)
    if anomaly is None:
        raise AnomalyError(f"no anomaly {anomaly_id}")
    allowed = {"acknowledged": ("open",), "resolved": ("open", "acknowledged")}[to]
    if anomaly.state not in allowed:
        raise AnomalyError(f"anomaly {anomaly_id} is {anomaly.state}; cannot mark it {to}")
    before = anomaly_dict(anomaly)
    anomaly.state = to
    anomaly.reason = reason
    if to == "acknowledged":
        anomaly.acknowledged_at, anomaly.acknowledged_by = now, actor
    else:
        anomaly.resolved_at = now
        if anomaly.acknowledged_by is None:
            anomaly.acknowledged_at, anomaly.acknowledged_by = now, actor
    append_audit(
        session,
        actor=actor,
        action=f"anomaly.{'acknowledge' if to == 'acknowledged' else 'resolve'}",
        target_type="anomaly",
        target_id=str(anomaly_id),
        before=before,
        after=anomaly_dict(anomaly),
        now=now,
    )
    return anomaly


def acknowledge(
    session: Session, actor: str, anomaly_id: int, reason: str, *, now: datetime
) -> Anomaly:
    return _transition(session, actor, anomaly_id, reason, now, "acknowledged")


def resolve(
    session: Session, actor: str, anomaly_id: int, reason: str, *, now: datetime
) -> Anomaly:
    return _transition(session, actor, anomaly_id, reason, now, "resolved")
