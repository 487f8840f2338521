"""FakeCups: a small, stateful stand-in for CUPS that unit tests can drive and inspect."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from controller.printing.types import (
    WAITING_STATES,
    CupsUnavailable,
    HeldJob,
    JobGone,
    JobLocation,
    JobState,
    PrintError,
    QueueStatus,
)


class FakeCups:
    """Queues and jobs in memory, with CUPS' rules for the operations the service uses.

    ``down = True`` makes every call raise CupsUnavailable; ``fail_after_releases = n`` lets n
    more releases succeed, then takes CUPS down (a crash in the middle of a release).
    """

    def __init__(self) -> None:
        self.queues: dict[str, QueueStatus] = {}
        self.jobs: dict[int, HeldJob] = {}
        self.down = False
        self.fail_after_releases: int | None = None
        self.fail_move_all = False
        self.calls: list[tuple[str, object]] = []
        self._next_id = 1

    # -- driving the fake ---------------------------------------------------------------
    def add_queue(self, name: str, *, stopped: bool = False, accepting: bool = True) -> None:
        self.queues[name] = QueueStatus(name, 5 if stopped else 3, accepting)

    def submit(
        self,
        queue: str,
        owner: str,
        *,
        title: str = "doc",
        created: datetime | None = None,
        hold: bool = False,
        copies: int = 1,
        impressions: int | None = 1,
    ) -> int:
        """A client submits a job; on a stopped queue it waits (pending, or held if asked)."""
        if queue not in self.queues:
            raise PrintError(f"no queue {queue}")
        job_id = self._next_id
        self._next_id += 1
        waiting = self.queues[queue].stopped or hold
        state = (JobState.HELD if hold else JobState.PENDING) if waiting else JobState.COMPLETED
        self.jobs[job_id] = HeldJob(
            job_id=job_id,
            queue=queue,
            owner=owner,
            title=title,
            created=created or datetime.now(UTC),
            state=state,
            copies=copies,
            impressions=impressions,
            sheets=impressions,
        )
        return job_id

    # -- CupsLike ------------------------------------------------------------------------
    def _check(self, op: str, arg: object) -> None:
        self.calls.append((op, arg))
        if self.down:
            raise CupsUnavailable("fake cupsd is down")

    def queue_status(self, queue: str) -> QueueStatus:
        self._check("queue_status", queue)
        if queue not in self.queues:
            raise PrintError(f"CUPS has no queue {queue!r}")
        return self.queues[queue]

    def waiting_jobs(self, queue: str) -> list[HeldJob]:
        self._check("waiting_jobs", queue)
        return [j for j in self.jobs.values() if j.queue == queue and j.state in WAITING_STATES]

    def waiting_jobs_in(self, queues: Sequence[str]) -> list[HeldJob]:
        self._check("waiting_jobs_in", tuple(queues))
        return [j for j in self.jobs.values() if j.queue in queues and j.state in WAITING_STATES]

    def move_all(self, from_queue: str, to_queue: str) -> None:
        self._check("move_all", (from_queue, to_queue))
        if self.fail_move_all:
            self.down = True
            raise CupsUnavailable("fake cupsd went down during the move")
        target = self.queues.get(to_queue)
        if from_queue not in self.queues or target is None:
            raise PrintError(f"CUPS has no queue {from_queue!r} or {to_queue!r}")
        state = JobState.PENDING if target.stopped else JobState.PROCESSING
        for job_id, j in sorted(self.jobs.items()):
            if j.queue == from_queue and j.state in WAITING_STATES:
                self.jobs[job_id] = replace(j, queue=to_queue, state=state)

    def release(self, job: HeldJob, to_queue: str) -> None:
        self._check("release", job.job_id)
        if self.fail_after_releases is not None:
            if self.fail_after_releases <= 0:
                self.down = True
                raise CupsUnavailable("fake cupsd went down during the release")
            self.fail_after_releases -= 1
        current = self.jobs.get(job.job_id)
        if current is None or current.state not in WAITING_STATES:
            raise JobGone(f"job {job.job_id} is no longer waiting")
        target = self.queues.get(to_queue)
        if target is None:
            raise PrintError(f"CUPS has no queue {to_queue!r}")
        state = JobState.PENDING if target.stopped else JobState.PROCESSING
        self.jobs[job.job_id] = replace(current, queue=to_queue, state=state)

    def cancel(self, job_id: int) -> None:
        self._check("cancel", job_id)
        current = self.jobs.get(job_id)
        if current is None or current.state not in WAITING_STATES:
            raise JobGone(f"job {job_id} is no longer waiting")
        self.jobs[job_id] = replace(current, state=JobState.CANCELED)

    def pause(self, queue: str) -> None:
        self._check("pause", queue)
        self.queues[queue] = replace(self.queues[queue], state=5)

    def locate(self, job_ids: Sequence[int]) -> dict[int, JobLocation]:
        self._check("locate", tuple(job_ids))
        return {
            i: JobLocation(i, self.jobs[i].queue, self.jobs[i].state)
            for i in job_ids
            if i in self.jobs
        }
