"""PrintRelease: turns a tap at a printer into released jobs or a denial, and expires old jobs.

The gateway resolves card -> person -> CUPS user names and calls ``release_for``; it calls
``expire`` periodically. Every outcome is emitted as an event through ``emit`` (the node runtime
journals it first). When CUPS fails part-way, the jobs already moved are reported as released and
the rest are reported in a ``cups_unavailable`` denial: they stay held, none is lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from controller.printing.events import (
    PRINT_DENIED,
    PRINT_EXPIRED,
    PRINT_RELEASE,
    DenialReason,
    ExpiredJob,
    PrintDeniedPayload,
    PrintExpiredPayload,
    PrintReleasePayload,
)
from controller.printing.release import (
    PresenceCheck,
    RightCheck,
    expired_jobs,
    person_denial,
    queue_denial,
    released_record,
    select_jobs,
)
from controller.printing.settings import PrintSettings, staging_queue
from controller.printing.types import CupsLike, CupsUnavailable, HeldJob, JobGone, PrintError

if TYPE_CHECKING:  # controller.events imports this package's models: no import at run time
    from controller.events import Emit

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ReleaseOutcome:
    """What one tap did. ``released`` printed; ``still_held`` stay held (denial or CUPS failure)."""

    printer: str
    person: str | None
    released: tuple[int, ...] = ()
    still_held: tuple[int, ...] = ()
    denial: DenialReason | None = None
    gone: tuple[int, ...] = field(default=())  # vanished between listing and release

    @property
    def ok(self) -> bool:
        return self.denial is None


class PrintRelease:
    def __init__(
        self,
        settings: PrintSettings,
        *,
        cups: CupsLike,
        emit: Emit,
        clock: Callable[[], datetime] = _utcnow,
        check_right: RightCheck | None = None,
        is_present: PresenceCheck | None = None,
        person_for_user: Callable[[str], str | None] | None = None,
        title_key: bytes | None = None,
    ) -> None:
        if settings.require_presence and is_present is None:
            raise ValueError("require_presence is set: pass is_present(person_id, now) -> bool")
        self.settings = settings
        self._cups = cups
        self._emit = emit
        self._clock = clock
        self._check_right = check_right
        self._is_present = is_present
        self._person_for_user = person_for_user
        # the gateway passes a key derived from its node key (stable across restarts); without
        # one, digests are comparable within this run only
        self._title_key = title_key if title_key is not None else os.urandom(32)
        #: released_jobs, expired_jobs, cups_errors, denied.<reason>: for the node's health report.
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()
        #: printer -> whether CUPS has its staging queue (see _staging)
        self._staging_ready: dict[str, bool] = {}

    # -- release ------------------------------------------------------------------------------
    def release_for(
        self,
        person_id: str | None,
        cups_users: Sequence[str],
        printer: str,
        *,
        denial: str | None = None,
    ) -> ReleaseOutcome:
        """Release ``person_id``'s held jobs on ``printer`` (a hold queue of this node).

        ``person_id`` None means the card is unknown. ``denial`` is a reason the gateway already
        found (no right, outside schedule...); it is reported as ``no_right``.
        """
        if printer not in self.settings.printers:
            raise ValueError(f"printer {printer!r} is not one of this node's hold queues")
        now = self._clock()
        reason = person_denial(
            person_id,
            printer,
            now,
            denial=denial,
            check_right=self._check_right,
            require_presence=self.settings.require_presence,
            is_present=self._is_present,
        )
        if reason is not None or person_id is None:
            return self._deny(reason or "unknown_card", printer, person_id)

        target = self.settings.release_queue(printer)
        with self._lock:  # one release at a time: the staging queue holds one person's jobs
            try:
                status = self._cups.queue_status(target)
                stopped = queue_denial(status)
                jobs = self._listing(printer)
            except PrintError as exc:
                return self._deny("cups_unavailable", printer, person_id, detail=str(exc))
            selection = select_jobs(cups_users, jobs, self.settings.release_mode).jobs
            if stopped is not None:
                detail = f"release queue {target} is stopped or not accepting jobs"
                return self._deny(stopped, printer, person_id, held=selection, detail=detail)
            if not selection:
                return self._deny("no_jobs", printer, person_id)
            return self._release(person_id, printer, target, selection)

    # -- the staging queue ------------------------------------------------------------------
    # Moving a job onto an enabled queue makes cupsd start it when the printer is idle (fork the
    # filters, write the job files): one move after another, each waits for that. So the first
    # job is moved at once (it starts printing), the others are moved to "{printer}-staging", a
    # stopped queue nobody can print to (a move there is cheap), and then all of them to the
    # release queue with one CUPS-Move-Job: cupsd starts the next job once, and prints them in
    # job-id (= submission) order. Without a staging queue (an older setup) every job is moved
    # on its own, as before. Staged jobs never print by themselves: a crash between the two
    # steps leaves them waiting on the stopped staging queue, and the next listing (tap or
    # expiry tick) moves them back to the hold queue.

    def _staging(self, printer: str) -> str | None:
        """The printer's staging queue if CUPS has it (checked once, kept stopped)."""
        if printer not in self._staging_ready:
            self._check_staging(printer)
        return staging_queue(printer) if self._staging_ready[printer] else None

    def _check_staging(self, printer: str) -> None:
        name = staging_queue(printer)
        try:
            status = self._cups.queue_status(name)
        except CupsUnavailable:
            raise
        except PrintError:
            if self._staging_ready.get(printer) is not False:
                log.warning("no staging queue %s: jobs are released one move at a time "
                            "(hardware/cups/setup-queues.sh creates it)", name)
            self._staging_ready[printer] = False
            return
        if not status.stopped:
            log.warning("staging queue %s was running; stopping it again", name)
            self._cups.pause(name)
        self._staging_ready[printer] = True

    def _listing(self, printer: str) -> list[HeldJob]:
        """Waiting jobs of ``printer``, with any left on its staging queue moved back first."""
        staging = self._staging(printer)
        if staging is None:
            return self._cups.waiting_jobs(printer)
        jobs = self._cups.waiting_jobs_in([printer, staging])
        if any(j.queue == staging for j in jobs):
            log.warning("jobs left on %s by an interrupted release go back on hold", staging)
            self._cups.move_all(staging, printer)
            jobs = [j if j.queue == printer else replace(j, queue=printer) for j in jobs]
        return jobs

    def _release(
        self, person_id: str, printer: str, target: str, selection: Sequence[HeldJob]
    ) -> ReleaseOutcome:
        done: list[HeldJob] = []
        gone: list[int] = []
        batched = bool(self._staging_ready.get(printer)) and len(selection) > 2
        failure = self._move_each(selection[:1] if batched else selection, target, done, gone)
        if batched and failure is None:
            try:  # the first job prints; make sure the staging queue is still there and stopped
                self._check_staging(printer)
            except PrintError as exc:
                failure = exc
            if failure is None and self._staging_ready[printer]:
                failure = self._move_staged(selection[1:], printer, staging_queue(printer),
                                            target, done, gone)
            elif failure is None:
                failure = self._move_each(selection[1:], target, done, gone)
        self.counters["released_jobs"] += len(done)
        if done:
            records = [released_record(j, redact_titles=self.settings.redact_titles,
                                       title_key=self._title_key) for j in done]
            pages = [r.pages for r in records]
            payload = PrintReleasePayload(
                printer=printer,
                person_id=person_id,
                job_ids=[r.job_id for r in records],
                jobs=records,
                copies=sum(r.copies for r in records),
                pages=None if any(p is None for p in pages) else sum(p or 0 for p in pages),
            )
            self._emit(PRINT_RELEASE, payload)
        released = tuple(j.job_id for j in done)
        if failure is not None:
            left = [j for j in selection if j.job_id not in released and j.job_id not in gone]
            self._deny("cups_unavailable", printer, person_id, held=left, detail=str(failure))
            return ReleaseOutcome(
                printer,
                person_id,
                released=released,
                still_held=tuple(j.job_id for j in left),
                denial="cups_unavailable",
                gone=tuple(gone),
            )
        if not done:  # every selected job vanished before we could release it
            self._deny("no_jobs", printer, person_id)
            return ReleaseOutcome(printer, person_id, denial="no_jobs", gone=tuple(gone))
        return ReleaseOutcome(printer, person_id, released=released, gone=tuple(gone))

    def _move_each(
        self, jobs: Sequence[HeldJob], to_queue: str, done: list[HeldJob], gone: list[int]
    ) -> PrintError | None:
        """Move ``jobs`` one by one, in order; stop at the first failure and return it."""
        for job in jobs:
            try:
                self._cups.release(job, to_queue)
            except JobGone:
                gone.append(job.job_id)
                continue
            except PrintError as exc:
                return exc
            done.append(job)
        return None

    def _move_staged(
        self,
        jobs: Sequence[HeldJob],
        printer: str,
        staging: str,
        target: str,
        done: list[HeldJob],
        gone: list[int],
    ) -> PrintError | None:
        staged: list[HeldJob] = []
        failure = self._move_each(jobs, staging, staged, gone)
        if not staged:
            return failure
        try:
            self._cups.move_all(staging, target)
        except PrintError as exc:
            with contextlib.suppress(PrintError):  # else the next listing moves them back
                self._cups.move_all(staging, printer)
            return failure or exc
        done.extend(staged)
        return failure

    def _deny(
        self,
        reason: DenialReason,
        printer: str,
        person_id: str | None,
        *,
        held: Sequence[HeldJob] = (),
        detail: str | None = None,
    ) -> ReleaseOutcome:
        self.counters[f"denied.{reason}"] += 1
        if reason == "cups_unavailable":
            self.counters["cups_errors"] += 1
            log.warning("print release on %s failed, jobs stay held: %s", printer, detail)
        payload = PrintDeniedPayload(
            reason=reason,
            printer=printer,
            person_id=person_id,
            job_ids=[j.job_id for j in held],
            detail=detail,
        )
        self._emit(PRINT_DENIED, payload)
        return ReleaseOutcome(
            printer, person_id, still_held=tuple(j.job_id for j in held), denial=reason
        )

    # -- housekeeping ---------------------------------------------------------------------
    def expire(self, now: datetime) -> list[int]:
        """Cancel jobs held longer than ``hold_hours`` on every hold queue; emit print.expired.

        Also re-stops any hold queue found running (someone ran cupsenable on it). Raises
        CupsUnavailable when CUPS cannot be reached, so the caller retries on its next tick.
        """
        cancelled: list[int] = []
        for printer in self.settings.printers:
            self._ensure_holding(printer)
            with self._lock:
                waiting = self._listing(printer)
            jobs = expired_jobs(waiting, now, self.settings.hold_hours)
            done: list[ExpiredJob] = []
            try:
                for job in jobs:
                    try:
                        self._cups.cancel(job.job_id)
                    except JobGone:
                        continue
                    done.append(self._expired_record(job, now))
            finally:
                if done:
                    payload = PrintExpiredPayload(
                        printer=printer,
                        job_ids=[j.job_id for j in done],
                        jobs=done,
                        hold_hours=self.settings.hold_hours,
                    )
                    self._emit(PRINT_EXPIRED, payload)
            cancelled.extend(j.job_id for j in done)
            self.counters["expired_jobs"] += len(done)
        return cancelled

    def _expired_record(self, job: HeldJob, now: datetime) -> ExpiredJob:
        person = self._person_for_user(job.owner) if self._person_for_user else None
        held = (now - job.created).total_seconds() / 3600
        return ExpiredJob(
            job_id=job.job_id, cups_user=job.owner, person_id=person, held_hours=round(held, 3)
        )

    def _ensure_holding(self, printer: str) -> None:
        status = self._cups.queue_status(printer)
        if not status.stopped:
            log.warning("hold queue %s was running; stopping it again so jobs stay held", printer)
            self._cups.pause(printer)
        with self._lock:
            self._check_staging(printer)

    def ensure_holding(self) -> None:
        """Stop every hold queue that is not stopped (call at start). Raises CupsUnavailable."""
        for printer in self.settings.printers:
            self._ensure_holding(printer)


__all__ = ["CupsUnavailable", "PrintRelease", "ReleaseOutcome"]
