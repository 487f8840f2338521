"""What an admin does with a review item: acknowledge or resolve it with a reason (through
``dashboard.anomalies``), assign it to a colleague, escalate it, or acknowledge several
identical low-severity items at once with one reason. Every action is audited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import anomalies
from dashboard.audit import append_audit
from dashboard.models.anomalies import Anomaly
from dashboard.models.auth import User

AnomalyError = anomalies.AnomalyError
ASSIGNABLE_ROLES = ("admin", "security_admin", "backup_operator")
LOW = ("info", "warning")
MAX_BULK = 500


def _get(db: Session, anomaly_id: int) -> Anomaly:
    row = db.get(Anomaly, anomaly_id)
    if row is None:
        raise AnomalyError(f"no anomaly {anomaly_id}")
    return row


def assignable(db: Session) -> list[User]:
    return list(db.scalars(select(User).where(User.active.is_(True),
                                              User.role.in_(ASSIGNABLE_ROLES))
                           .order_by(User.username)))


def assign(db: Session, actor: str, anomaly_id: int, assignee: str, *, now: datetime
           ) -> Anomaly:
    """Give the item to ``assignee`` (a dashboard user who may act on it); "" unassigns."""
    row = _get(db, anomaly_id)
    if assignee and assignee not in {u.username for u in assignable(db)}:
        raise AnomalyError(f"{assignee[:64]!r} is not a user who can work on review items")
    before = anomalies.anomaly_dict(row)
    row.assignee = assignee or None
    append_audit(db, actor=actor, action="anomaly.assign", target_type="anomaly",
                 target_id=str(anomaly_id), before=before, after=anomalies.anomaly_dict(row),
                 now=now)
    return row


def escalate(db: Session, actor: str, anomaly_id: int, reason: str, *, now: datetime) -> Anomaly:
    """Raise the item to critical and mark it escalated (with why), e.g. for the manager."""
    reason = (reason or "").strip()
    if not reason:
        raise AnomalyError("a reason is required")
    if len(reason) > 2000:
        raise AnomalyError("reason is longer than 2000 characters")
    row = _get(db, anomaly_id)
    if row.state == "resolved":
        raise AnomalyError(f"anomaly {anomaly_id} is resolved; cannot escalate it")
    before = anomalies.anomaly_dict(row)
    row.severity, row.escalated_at, row.escalated_by = "critical", now, actor
    append_audit(db, actor=actor, action="anomaly.escalate", target_type="anomaly",
                 target_id=str(anomaly_id), before=before,
                 after={**anomalies.anomaly_dict(row), "note": reason}, now=now)
    return row


def bulk_acknowledge(db: Session, actor: str, ids: Sequence[int], reason: str, *,
                     now: datetime) -> list[Anomaly]:
    """Acknowledge several open items of one kind and low severity with one reason (each
    audited as its own acknowledgement); refuses a mix of kinds or a critical item."""
    unique = sorted(set(ids))
    if not unique:
        raise AnomalyError("choose at least one item")
    if len(unique) > MAX_BULK:
        raise AnomalyError(f"at most {MAX_BULK} items at once")
    rows = list(db.scalars(select(Anomaly).where(Anomaly.id.in_(unique))))
    if len(rows) != len(unique):
        raise AnomalyError("some of the chosen items do not exist")
    if len({r.kind for r in rows}) > 1:
        raise AnomalyError("only identical items (one kind) can be acknowledged together")
    if any(r.severity not in LOW for r in rows):
        raise AnomalyError("critical items are acknowledged one by one")
    if any(r.state != "open" for r in rows):
        raise AnomalyError("some of the chosen items are no longer open")
    return [anomalies.acknowledge(db, actor, r.id, reason, now=now) for r in rows]
