"""Pure release decisions: who may release, which jobs, which have expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.numguard import REDACTED
from controller.printing.release import (
    expired_jobs,
    person_denial,
    queue_denial,
    released_record,
    select_jobs,
    title_digest,
)
from controller.printing.types import HeldJob, JobState, QueueStatus

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def job(job_id: int, owner: str, minutes_ago: float, state: JobState = JobState.PENDING) -> HeldJob:
    return HeldJob(
        job_id=job_id,
        queue="room",
        owner=owner,
        title=f"t{job_id}",
        created=NOW - timedelta(minutes=minutes_ago),
        state=state,
    )


def test_unknown_card_is_denied_before_anything_else() -> None:
    calls: list[str] = []

    def right(*_: object) -> str | None:
        calls.append("right")
        return None

    assert person_denial(None, "room", NOW, check_right=right) == "unknown_card"
    assert calls == []


def test_right_check_gets_person_printer_and_now() -> None:
    seen: list[tuple[str, str, datetime]] = []

    def right(person: str, printer: str, now: datetime) -> str | None:
        seen.append((person, printer, now))
        return "outside_schedule"

    assert person_denial("p1", "room", NOW, check_right=right) == "no_right"
    assert seen == [("p1", "room", NOW)]


def test_denial_from_gateway_wins_and_maps_to_no_right() -> None:
    assert person_denial("p1", "room", NOW, denial="inactive") == "no_right"
    assert person_denial("p1", "room", NOW, denial="not_in_room") == "not_in_room"


def test_presence_is_checked_only_when_required() -> None:
    away = lambda person, now: False  # noqa: E731
    assert person_denial("p1", "room", NOW, is_present=away) is None
    assert person_denial("p1", "room", NOW, require_presence=True, is_present=away) == "not_in_room"
    here = lambda person, now: True  # noqa: E731
    assert person_denial("p1", "room", NOW, require_presence=True, is_present=here) is None
    with pytest.raises(ValueError, match="presence"):
        person_denial("p1", "room", NOW, require_presence=True)


def test_stopped_or_rejecting_release_queue_is_printer_stopped() -> None:
    assert queue_denial(QueueStatus("r", 3, True)) is None
    assert queue_denial(QueueStatus("r", 4, True)) is None
    assert queue_denial(QueueStatus("r", 5, True)) == "printer_stopped"
    assert queue_denial(QueueStatus("r", 3, False)) == "printer_stopped"


def test_select_only_the_persons_waiting_jobs_oldest_first() -> None:
    jobs = [
        job(4, "alice", 1),
        job(1, "bob", 9),
        job(2, "Alice", 8),
        job(3, "alice-admin", 7),
        job(5, "alice", 30, JobState.COMPLETED),
        job(6, "a.suzuki", 3, JobState.HELD),
    ]
    picked = select_jobs(["alice", "a.suzuki"], jobs, "all").jobs
    assert [j.job_id for j in picked] == [2, 6, 4]
    assert [j.job_id for j in select_jobs(["alice"], jobs, "newest").jobs] == [4]
    assert [j.job_id for j in select_jobs(["alice"], jobs, "oldest").jobs] == [2]
    assert select_jobs(["carol"], jobs, "all").jobs == ()
    assert select_jobs([], jobs, "all").jobs == ()


def test_expired_jobs_are_those_older_than_the_hold_time() -> None:
    jobs = [
        job(1, "a", 241),
        job(2, "a", 239),
        job(3, "b", 240),
        job(4, "a", 500, JobState.CANCELED),
    ]
    assert [j.job_id for j in expired_jobs(jobs, NOW, 4)] == [1, 3]
    assert [j.job_id for j in expired_jobs(jobs, NOW, 8)] == []


def test_titles_are_hashed_when_redacted_and_numbers_scrubbed_when_not() -> None:
    held = HeldJob(1, "room", "alice", "源泉徴収票 1234\ufe635678\ufe639018", NOW,
                   JobState.PENDING, 2, 3)
    key = b"k" * 32
    redacted = released_record(held, redact_titles=True, title_key=key)
    assert redacted.title is None
    # the digest is of the title without its number: not even the key confirms a number
    assert redacted.title_hmac == title_digest(f"源泉徴収票 {REDACTED}", key)
    assert len(redacted.title_hmac or "") == 16
    shown = released_record(held, redact_titles=False, title_key=key)
    assert shown.title == f"源泉徴収票 {REDACTED}"
    assert shown.title_hmac is None
    assert (shown.copies, shown.pages) == (2, 3)
    # A 12-digit run that fails the check digit is not an individual number: kept.
    near = HeldJob(2, "room", "alice", "invoice 123456789012", NOW, JobState.PENDING, 1, 1)
    assert released_record(near, redact_titles=False, title_key=key).title == \
        "invoice 123456789012"


def test_a_guessable_title_cannot_be_confirmed_without_the_node_key() -> None:
    """The digest is keyed: the plain SHA-256 of a guessed title does not match it, and
    another node's key gives another digest (before, it was the unkeyed SHA-256)."""
    import hashlib

    held = HeldJob(1, "room", "alice", "扶養控除申告書_山田太郎.pdf", NOW, JobState.PENDING, 1, 1)
    mine = released_record(held, redact_titles=True, title_key=b"a" * 32).title_hmac
    theirs = released_record(held, redact_titles=True, title_key=b"b" * 32).title_hmac
    assert mine != hashlib.sha256(held.title.encode()).hexdigest()[:16]
    assert mine != theirs
