"""Shared types of the printing feature: the CUPS boundary protocol, its records and errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Protocol


class PrintError(Exception):
    """A CUPS operation failed; the message says what and what to do next."""


class CupsUnavailable(PrintError):
    """cupsd cannot be reached (down, restarting, refused the connection, timed out)."""


class JobGone(PrintError):
    """The job no longer exists or is no longer held (cancelled, purged, released elsewhere)."""


class JobState(IntEnum):
    """IPP job-state values (RFC 8011 5.3.7)."""

    PENDING = 3
    HELD = 4
    PROCESSING = 5
    STOPPED = 6
    CANCELED = 7
    ABORTED = 8
    COMPLETED = 9


#: States in which a job on a hold queue is still waiting for its owner's tap.
WAITING_STATES = frozenset({JobState.PENDING, JobState.HELD, JobState.STOPPED})
#: States that show CUPS has let a job go to the printer.
RELEASED_STATES = frozenset({JobState.PENDING, JobState.PROCESSING, JobState.COMPLETED})


@dataclass(frozen=True, slots=True)
class HeldJob:
    """A job waiting on a hold queue, as CUPS reports it."""

    job_id: int
    queue: str
    owner: str
    title: str
    created: datetime  # UTC, from time-at-creation
    state: JobState
    copies: int = 1
    impressions: int | None = None  # job-impressions, where CUPS could count them
    sheets: int | None = None  # job-media-sheets, where CUPS could count them


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """printer-state of a CUPS queue: 3 idle, 4 processing, 5 stopped."""

    name: str
    state: int
    accepting: bool
    reasons: tuple[str, ...] = ()

    @property
    def stopped(self) -> bool:
        return self.state == 5


@dataclass(frozen=True, slots=True)
class JobLocation:
    """Where a job is now and in which state (used to verify a release)."""

    job_id: int
    queue: str
    state: JobState


class CupsLike(Protocol):
    """What the release service needs from CUPS (real: CupsAdapter; fake: FakeCups).

    Every method raises CupsUnavailable when cupsd cannot be reached and PrintError on any other
    failure; JobGone when the job no longer exists or is no longer waiting.
    """

    def queue_status(self, queue: str) -> QueueStatus: ...

    def waiting_jobs(self, queue: str) -> list[HeldJob]:
        """Jobs on ``queue`` that have not been released (pending, held or stopped)."""
        ...

    def waiting_jobs_in(self, queues: Sequence[str]) -> list[HeldJob]:
        """The same for several queues in one listing; ``HeldJob.queue`` says where each is."""
        ...

    def release(self, job: HeldJob, to_queue: str) -> None:
        """Clear the job's hold and move it from its hold queue to ``to_queue``, which prints."""
        ...

    def move_all(self, from_queue: str, to_queue: str) -> None:
        """Move every waiting job of ``from_queue`` to ``to_queue`` in one request."""
        ...

    def cancel(self, job_id: int) -> None: ...

    def pause(self, queue: str) -> None:
        """Stop ``queue`` (printer-state stopped) so it keeps every job waiting."""
        ...

    def locate(self, job_ids: Sequence[int]) -> dict[int, JobLocation]: ...
