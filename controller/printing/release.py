"""Pure release decisions: who may release which held jobs, and which jobs have expired.

No I/O and no clock: CUPS state, the rights check and the presence check come in as arguments.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.numguard import scrub
from controller.printing.events import DenialReason, ReleasedJob
from controller.printing.settings import ReleaseMode
from controller.printing.types import WAITING_STATES, HeldJob, QueueStatus

#: ``check_right(person_id, printer, now) -> denial reason or None``, supplied by the gateway.
RightCheck = Callable[[str, str, datetime], str | None]
#: ``is_present(person_id, now) -> bool``: is the person inside the room now?
PresenceCheck = Callable[[str, datetime], bool]


@dataclass(frozen=True, slots=True)
class Selection:
    """Jobs to release, in the order to release them (oldest first)."""

    jobs: tuple[HeldJob, ...]


def person_denial(
    person_id: str | None,
    printer: str,
    now: datetime,
    *,
    denial: str | None = None,
    check_right: RightCheck | None = None,
    require_presence: bool = False,
    is_present: PresenceCheck | None = None,
) -> DenialReason | None:
    """Why this tap may not release anything, before asking CUPS; None when it may."""
    if person_id is None:
        return "unknown_card"
    if denial is not None:
        return _as_reason(denial)
    if check_right is not None:
        reason = check_right(person_id, printer, now)
        if reason is not None:
            return _as_reason(reason)
    if require_presence:
        if is_present is None:
            raise ValueError("require_presence is set but no presence check was given")
        if not is_present(person_id, now):
            return "not_in_room"
    return None


def _as_reason(reason: str) -> DenialReason:
    """The gateway's own reasons (inactive, expired, outside schedule...) all mean no_right here."""
    if reason in ("unknown_card", "not_in_room"):
        return reason  # type: ignore[return-value]
    return "no_right"


def queue_denial(status: QueueStatus) -> DenialReason | None:
    """A release queue that is stopped or refuses jobs would strand released jobs: deny."""
    if status.stopped or not status.accepting:
        return "printer_stopped"
    return None


def select_jobs(cups_users: Sequence[str], jobs: Sequence[HeldJob], mode: ReleaseMode) -> Selection:
    """The person's waiting jobs (owner among ``cups_users``, case-insensitive) per ``mode``."""
    users = {u.casefold() for u in cups_users if u}
    mine = sorted(
        (j for j in jobs if j.owner.casefold() in users and j.state in WAITING_STATES),
        key=lambda j: (j.created, j.job_id),
    )
    if not mine:
        return Selection(())
    if mode == "newest":
        return Selection((mine[-1],))
    if mode == "oldest":
        return Selection((mine[0],))
    return Selection(tuple(mine))


def expired_jobs(jobs: Sequence[HeldJob], now: datetime, hold_hours: float) -> list[HeldJob]:
    """Waiting jobs created more than ``hold_hours`` before ``now``, oldest first."""
    limit = now - timedelta(hours=hold_hours)
    return sorted(
        (j for j in jobs if j.state in WAITING_STATES and j.created <= limit),
        key=lambda j: (j.created, j.job_id),
    )


def title_digest(title: str, key: bytes) -> str:
    """HMAC-SHA256 of the title under the node's title key, first 16 hex digits: the same
    title gives the same digest on this node, but a short, guessable title (a form name and a
    person's name) cannot be confirmed without the key, which never leaves the node. Taken
    after the title's individual numbers are removed, so not even the key confirms one."""
    return hmac.new(key, scrub(title).encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def released_record(job: HeldJob, *, redact_titles: bool, title_key: bytes) -> ReleasedJob:
    return ReleasedJob(
        job_id=job.job_id,
        cups_user=job.owner,
        copies=max(job.copies, 1),
        pages=job.impressions,
        sheets=job.sheets,
        title=None if redact_titles else scrub(job.title),
        title_hmac=title_digest(job.title, title_key) if redact_titles else None,
    )
