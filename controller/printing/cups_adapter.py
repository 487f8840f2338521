"""CupsAdapter: the only module that imports pycups. Turns its errors into PrintError.

Authentication: libcups authenticates when cupsd answers 401, i.e. for operations the queue
policy limits (Release/Move/Cancel/Pause, and Get-Jobs on the room queues so that job owners and
titles are visible to the gateway only). Two ways are supported:

* ``user`` + ``password_file``: HTTP Basic as a CUPS system-group account (production).
* as root on the CUPS host with ``state_dir``: libcups' Local certificate ($CUPS_STATEDIR/certs/0).

pycups keeps the user name and the password callback process-wide, so one adapter per process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import cups

from controller.printing.settings import PrintSettings
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

T = TypeVar("T")

_JOB_ATTRS = [
    "job-id",
    "job-state",
    "job-printer-uri",
    "job-originating-user-name",
    "job-name",
    "time-at-creation",
    "copies",
    "job-impressions",
    "job-media-sheets",
]
_UNAVAILABLE = {cups.IPP_SERVICE_UNAVAILABLE, cups.IPP_TEMPORARY_ERROR, cups.IPP_INTERNAL_ERROR}
_GONE = {cups.IPP_NOT_FOUND, cups.IPP_NOT_POSSIBLE}


class CupsAdapter:
    def __init__(
        self,
        host: str = "localhost",
        port: int = 631,
        *,
        user: str | None = None,
        password_file: Path | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._conn: Any = None
        if state_dir is not None:
            os.environ["CUPS_STATEDIR"] = str(state_dir)
        if user:
            cups.setUser(user)
        self.user = user or cups.getUser()
        self._password: str | None = None
        if password_file is not None:
            try:
                self._password = password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise PrintError(f"cannot read the CUPS password file {password_file}") from exc
            cups.setPasswordCB2(self._password_cb)

    @classmethod
    def from_settings(cls, settings: PrintSettings) -> CupsAdapter:
        return cls(
            settings.cups_host,
            settings.cups_port,
            user=settings.cups_user,
            password_file=settings.cups_password_file,
            state_dir=settings.cups_state_dir,
        )

    def __repr__(self) -> str:  # never the password
        return f"CupsAdapter({self.host}:{self.port}, user={self.user!r})"

    def _password_cb(self, prompt: str, *_: object) -> str:
        return self._password or ""

    # -- plumbing -----------------------------------------------------------------------
    def _queue_uri(self, queue: str) -> str:
        return f"ipp://{self.host}:{self.port}/printers/{queue}"

    def _call(self, what: str, op: Callable[[Any], T]) -> T:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = cups.Connection(host=self.host, port=self.port)
                return op(self._conn)
            except cups.IPPError as exc:
                status, message = exc.args if len(exc.args) == 2 else (-1, str(exc))
                if status in _GONE:
                    raise JobGone(f"{what}: {message}") from exc
                self._conn = None
                if status in _UNAVAILABLE:
                    raise CupsUnavailable(
                        f"{what}: cupsd at {self.host}:{self.port} is unavailable ({message}); "
                        "jobs stay held, retry when CUPS is back"
                    ) from exc
                raise PrintError(
                    f"{what}: CUPS refused ({message}, status 0x{status:04x})"
                ) from exc
            except cups.HTTPError as exc:
                self._conn = None
                raise PrintError(
                    f"{what}: HTTP error {exc.args[0] if exc.args else exc} from cupsd; "
                    f"check that CUPS user {self.user!r} may administer the room queues"
                ) from exc
            except RuntimeError as exc:
                self._conn = None
                raise CupsUnavailable(
                    f"{what}: cannot connect to cupsd at {self.host}:{self.port} ({exc}); "
                    "jobs stay held, retry when CUPS is back"
                ) from exc

    # -- CupsLike ------------------------------------------------------------------------
    def queue_status(self, queue: str) -> QueueStatus:
        try:
            attrs = self._call(
                f"status of queue {queue}",
                lambda c: c.getPrinterAttributes(
                    queue,
                    requested_attributes=[
                        "printer-state",
                        "printer-is-accepting-jobs",
                        "printer-state-reasons",
                    ],
                ),
            )
        except JobGone as exc:
            raise PrintError(f"CUPS has no queue {queue!r}: create it (hardware/cups)") from exc
        reasons = attrs.get("printer-state-reasons", ())
        if isinstance(reasons, str):
            reasons = (reasons,)
        return QueueStatus(
            name=queue,
            state=int(attrs.get("printer-state", 0)),
            accepting=bool(attrs.get("printer-is-accepting-jobs", False)),
            reasons=tuple(reasons),
        )

    def _jobs(self, which: str) -> dict[int, dict[str, Any]]:
        jobs: dict[int, dict[str, Any]] = self._call(
            "list jobs", lambda c: c.getJobs(which_jobs=which, requested_attributes=_JOB_ATTRS)
        )
        return jobs

    def waiting_jobs(self, queue: str) -> list[HeldJob]:
        return self.waiting_jobs_in([queue])

    def waiting_jobs_in(self, queues: Sequence[str]) -> list[HeldJob]:
        """Waiting jobs on any of ``queues`` (one Get-Jobs), each with the queue it is on."""
        wanted = set(queues)
        out: list[HeldJob] = []
        for job_id, a in self._jobs("not-completed").items():
            queue = str(a.get("job-printer-uri", "")).rsplit("/printers/", 1)[-1]
            if queue not in wanted:
                continue
            state = JobState(int(a.get("job-state", 0)))
            if state not in WAITING_STATES:
                continue
            out.append(
                HeldJob(
                    job_id=int(job_id),
                    queue=queue,
                    owner=str(a.get("job-originating-user-name", "")),
                    title=str(a.get("job-name", "")),
                    created=datetime.fromtimestamp(int(a.get("time-at-creation", 0)), UTC),
                    state=state,
                    copies=int(a.get("copies", 1)),
                    impressions=_opt_int(a.get("job-impressions")),
                    sheets=_opt_int(a.get("job-media-sheets")),
                )
            )
        return out

    def release(self, job: HeldJob, to_queue: str) -> None:
        """Clear the hold first (the job stays pending on the stopped hold queue), then move.

        A crash between the two leaves the job waiting on the hold queue: still held.
        """
        if job.state == JobState.HELD:
            self._call(
                f"clear hold of job {job.job_id}",
                lambda c: c.setJobHoldUntil(job.job_id, "no-hold"),
            )
        self._call(
            f"move job {job.job_id} to {to_queue}",
            lambda c: c.moveJob(job_id=job.job_id, job_printer_uri=self._queue_uri(to_queue)),
        )

    def move_all(self, from_queue: str, to_queue: str) -> None:
        """One CUPS-Move-Job with the source queue's printer-uri and no job-id: cupsd moves
        every unfinished job on ``from_queue`` and then starts what can start, once."""
        self._call(
            f"move the jobs of {from_queue} to {to_queue}",
            lambda c: c.moveJob(
                printer_uri=self._queue_uri(from_queue),
                job_printer_uri=self._queue_uri(to_queue),
            ),
        )

    def cancel(self, job_id: int) -> None:
        self._call(f"cancel job {job_id}", lambda c: c.cancelJob(job_id, purge_job=False))

    def pause(self, queue: str) -> None:
        self._call(f"stop queue {queue}", lambda c: c.disablePrinter(queue))

    def locate(self, job_ids: Sequence[int]) -> dict[int, JobLocation]:
        wanted = set(job_ids)
        out: dict[int, JobLocation] = {}
        for job_id, a in self._jobs("all").items():
            if int(job_id) in wanted:
                queue = str(a.get("job-printer-uri", "")).rsplit("/", 1)[-1]
                out[int(job_id)] = JobLocation(int(job_id), queue, JobState(int(a["job-state"])))
        return out


def _opt_int(value: object) -> int | None:
    if value is None:
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
