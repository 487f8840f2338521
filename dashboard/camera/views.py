"""Which fetch of a still is a view an auditor reads (audit action ``camera.still_view``).

A still's image never changes (its SHA-256 is in the node's signed camera.still event), so the
browser may keep it: ``Cache-Control: private, no-cache`` (never a shared cache; the browser
asks again each time it shows it) and an ``ETag`` that is the still's digest. Asking again is
cheap: the answer is 304 with no body when the browser's copy is the still's.

What counts as a view:
- every answer with the image (200), and every refusal for failing its check: audited;
- a 304 (the browser shows its copy) is a view of someone who had not yet seen it in this
  log-in session lately: audited unless this user already has a view of this still from the
  same session within ``VIEW_WINDOW`` (a door log reloaded, a live cell fetched again: one
  row, not dozens). A new session, another user, or the same session after the window: a row.
- a view through an API token (no session) is always audited.

Each row keeps its session's number in ``after["session"]`` (hidden on the audit page: the
actor and the time are what a person reads there) to tell a session's re-validation from
another's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.audit import append_audit
from dashboard.auth.service import Principal
from dashboard.models.audit import AuditRecord

ACTION = "camera.still_view"
VIEW_WINDOW = timedelta(minutes=15)
CACHE_CONTROL = "private, no-cache"


def etag(sha256_hex: str) -> str:
    return f'"{sha256_hex}"'


def matches(if_none_match: str, tag: str) -> bool:
    """True if the browser's If-None-Match names ``tag`` (weak or strong, in a list, or *)."""
    for item in if_none_match.split(","):
        item = item.strip()
        if item == "*" or item.removeprefix("W/") == tag:
            return True
    return False


def seen_lately(db: Session, who: Principal, still_id: str, now: datetime) -> bool:
    """This session already has an audited view of this still within the window."""
    if who.session_id is None:
        return False
    rows = db.scalars(select(AuditRecord.after).where(
        AuditRecord.target_type == "camera_still", AuditRecord.target_id == still_id,
        AuditRecord.action == ACTION, AuditRecord.actor == who.username,
        AuditRecord.at >= now - VIEW_WINDOW))
    return any(isinstance(a, dict) and a.get("session") == who.session_id for a in rows)


def audit_view(db: Session, who: Principal, still_id: str, integrity: str, now: datetime,
               *, revalidated: bool = False) -> None:
    after: dict[str, object] = {"integrity": integrity}
    if who.session_id is not None:
        after["session"] = who.session_id
    if revalidated:
        after["cached"] = True  # the browser showed its copy of the same image
    append_audit(db, actor=who.username, action=ACTION, target_type="camera_still",
                 target_id=still_id, before=None, after=after, now=now)
