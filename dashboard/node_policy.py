"""Does a node run the policy it should? Judged from what its state message reports.

A node reports under ``policy`` (controller.policy_store.PolicyStore.status) the version it
runs, whether that is past its expiry (``stale``) and the scope it decides on. The ingest's
state handler asks ``policy_anomaly`` for each approved node's state message: a node that says
its policy expired, or that still runs (or has none, while it declared a scope) an older version
than the newest this dashboard published more than ``grace_s`` ago, is raised as
``policy_stale``: it decides on old rights (or, failing closed, on none).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models.policy import PolicyVersion

POLICY_GRACE_S = 120.0  # a node applies a new version in seconds; this long is not a hiccup


class AnomalySink(Protocol):
    def add(self, kind: str, key: str, *, node: str | None, subject: str, severity: str,
            detail: dict[str, Any] | None = None) -> None: ...


def policy_anomaly(session: Session, name: str, reported: Any, now: datetime,
                   pending: AnomalySink, *, grace_s: float = POLICY_GRACE_S) -> str | None:
    """Raise ``policy_stale`` for ``name`` if its reported policy is expired or behind; return
    the reason ("expired", "behind", "missing") or None."""
    if not isinstance(reported, dict):
        return None  # a node that follows no policy (a backup job) or an older release
    version = reported.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        return None
    latest = session.execute(
        select(PolicyVersion.version, PolicyVersion.published_at)
        .where(PolicyVersion.published_at.is_not(None))
        .order_by(PolicyVersion.version.desc()).limit(1)
    ).first()
    reason: str | None = None
    if reported.get("stale") is True:
        reason = "expired"
    elif latest is not None and _older_than(latest[1], now, grace_s):
        scoped = isinstance(reported.get("scope"), dict)
        if version is None and scoped:
            reason = "missing"
        elif version is not None and version < latest[0]:
            reason = "behind"
    if reason is None:
        return None
    pending.add(
        "policy_stale", name, node=name, severity="warning",
        subject=f"{name}: runs policy {version if version is not None else '-'} ({reason})",
        detail={"reason": reason, "version": version,
                "latest": latest[0] if latest is not None else None,
                "expires_at": str(reported.get("expires_at"))[:32]},
    )
    return reason


def _older_than(when: datetime, now: datetime, seconds: float) -> bool:
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return (now - when).total_seconds() > seconds
