"""Read-side queries over stored backup.* events: the calendar of nights, the last snapshot,
verify and drill results, failures and prunes.

A night is the site-local date a run finished on (the 02:00 run of the 21st is the night the
operator checks on the morning of the 21st), as in the monthly report. A night is ``done`` when
a snapshot finished, ``failed`` when only failed runs did, ``missing`` when nothing came; today
without a run yet is ``pending`` and later days are ``future``. Failed verifies, drills or prunes
do not change a night (they are listed with the checks).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from backup.events import BackupFailed, BackupPruned, BackupSnapshot, BackupVerified
from dashboard.models.events import StoredEvent

SNAPSHOT, FAILED, VERIFIED, PRUNED = (
    "backup.snapshot", "backup.failed", "backup.verified", "backup.pruned")
KINDS = (SNAPSHOT, FAILED, VERIFIED, PRUNED)
MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
NightStatus = Literal["done", "failed", "missing", "pending", "future"]


class BackupQueryError(ValueError):
    """A query the page or the API cannot answer (a malformed month)."""


def parse_month(month: str) -> date:
    m = MONTH_RE.match(month or "")
    if not m:
        raise BackupQueryError(f"month must look like 2026-11, not {month[:20]!r}")
    return date(int(m.group(1)), int(m.group(2)), 1)


def month_of(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date().replace(day=1)


def month_range(first: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants where the site-local month starting on ``first`` begins and ends."""
    nxt = (first + timedelta(days=32)).replace(day=1)
    return (datetime.combine(first, time(0), zone).astimezone(UTC),
            datetime.combine(nxt, time(0), zone).astimezone(UTC))


@dataclass(frozen=True)
class Stored:
    """One stored backup event (columns, no ORM object)."""

    id: int
    node: str
    seq: int
    ts: datetime
    kind: str
    data: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.node}:{self.seq}"


def _stored(row: Any) -> Stored:
    data = row.data if isinstance(row.data, dict) else {}
    return Stored(row.id, row.node, row.seq, row.ts, row.kind, data)


def load(db: Session, kinds: Iterable[str], since: datetime | None, until: datetime | None,
         node: str | None = None, *, newest: int | None = None) -> list[Stored]:
    """Backup events of ``kinds`` in [since, until); oldest first, or the ``newest`` n."""
    q = select(StoredEvent.id, StoredEvent.node, StoredEvent.seq, StoredEvent.ts,
               StoredEvent.kind, StoredEvent.data).where(StoredEvent.kind.in_(list(kinds)))
    if since is not None:
        q = q.where(StoredEvent.ts >= since)
    if until is not None:
        q = q.where(StoredEvent.ts < until)
    if node:
        q = q.where(StoredEvent.node == node)
    if newest is not None:
        rows = db.execute(q.order_by(StoredEvent.ts.desc(), StoredEvent.id.desc())
                          .limit(newest)).all()
        return [_stored(r) for r in reversed(rows)]
    return [_stored(r) for r in db.execute(q.order_by(StoredEvent.ts, StoredEvent.id))]


# -- the calendar --------------------------------------------------------------------------------


class NightOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: date
    status: NightStatus
    snapshots: int = 0
    failed_runs: int = 0
    errors: list[str] = []  # error classes of the failed runs (locked, disk_full, ...)
    refs: list[str] = []  # node:seq of the runs (snapshots and failed runs)
    last_at: datetime | None = None


class CalendarOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    month: str
    nights: list[NightOut]
    done: int
    failed: int
    missing: int


def is_run_failure(e: Stored) -> bool:
    return e.kind == FAILED and str(e.data.get("stage", "run")) == "run"


def nights(first: date, events: Sequence[Stored], zone: ZoneInfo, today: date) -> CalendarOut:
    """Pure: the nights of the month starting on ``first`` from its snapshot and failure events."""
    by_day: dict[date, list[Stored]] = defaultdict(list)
    for e in events:
        if e.kind == SNAPSHOT or is_run_failure(e):
            by_day[e.ts.astimezone(zone).date()].append(e)
    out: list[NightOut] = []
    day = first
    while day.month == first.month:
        got = by_day.get(day, [])
        ok = [e for e in got if e.kind == SNAPSHOT]
        bad = [e for e in got if e.kind == FAILED]
        status: NightStatus
        if ok:
            status = "done"
        elif bad:
            status = "failed"
        elif day > today:
            status = "future"
        elif day == today:
            status = "pending"
        else:
            status = "missing"
        out.append(NightOut(
            day=day, status=status, snapshots=len(ok), failed_runs=len(bad),
            errors=sorted({str(e.data.get("error", "error"))[:32] for e in bad}),
            refs=[e.ref for e in got], last_at=max((e.ts for e in got), default=None)))
        day += timedelta(days=1)
    return CalendarOut(month=first.strftime("%Y-%m"), nights=out,
                       done=sum(n.status == "done" for n in out),
                       failed=sum(n.status == "failed" for n in out),
                       missing=sum(n.status == "missing" for n in out))


def calendar(db: Session, first: date, zone: ZoneInfo, now: datetime,
             node: str | None = None) -> CalendarOut:
    since, until = month_range(first, zone)
    return nights(first, load(db, (SNAPSHOT, FAILED), since, until, node), zone,
                  now.astimezone(zone).date())


def weeks(cal: CalendarOut) -> list[list[NightOut | None]]:
    """The nights laid out Monday to Sunday, padded with None (for the page)."""
    cells: list[NightOut | None] = [None] * cal.nights[0].day.weekday() + list(cal.nights)
    cells += [None] * (-len(cells) % 7)
    return [cells[i : i + 7] for i in range(0, len(cells), 7)]


# -- last snapshot, checks, failures, prunes ---------------------------------------------------


class _Ref(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: str
    node: str
    ts: datetime


class SnapshotOut(_Ref):
    snapshot: BackupSnapshot


class CheckOut(_Ref):
    """A verify or drill result (backup.verified), or a verify / drill that failed to run."""

    mode: str
    result: str
    verified: BackupVerified | None = None
    failed: BackupFailed | None = None


class FailureOut(_Ref):
    failed: BackupFailed


class PruneOut(_Ref):
    pruned: BackupPruned


class StatusOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    now: datetime
    last_snapshot: SnapshotOut | None
    last_good_age_h: float | None
    max_age_h: float
    overdue: bool  # no good snapshot younger than max_age_h
    last_checks: dict[str, CheckOut]  # per mode: structure, read_data, drill
    checks: list[CheckOut]  # newest first
    failures: list[FailureOut]  # newest first
    prunes: list[PruneOut]  # newest first
    invalid: int  # stored backup events whose payload does not fit the model
    nodes: list[str]


def _parse(e: Stored) -> BaseModel | None:
    models: dict[str, type[BaseModel]] = {SNAPSHOT: BackupSnapshot, FAILED: BackupFailed,
                                          VERIFIED: BackupVerified, PRUNED: BackupPruned}
    model = models[e.kind]
    try:
        return model.model_validate(e.data)
    except ValidationError:
        return None


def status(db: Session, now: datetime, *, max_age_h: float = 26.0, node: str | None = None,
           recent: int = 20) -> StatusOut:
    """The last snapshot's figures, the latest verify and drill results, failures, prunes."""
    invalid = 0
    snap: SnapshotOut | None = None
    for e in reversed(load(db, (SNAPSHOT,), None, now + timedelta(microseconds=1), node,
                           newest=recent)):
        p = _parse(e)
        if isinstance(p, BackupSnapshot):
            snap = SnapshotOut(ref=e.ref, node=e.node, ts=e.ts, snapshot=p)
            break
        invalid += 1
    checks: list[CheckOut] = []
    failures: list[FailureOut] = []
    prunes: list[PruneOut] = []
    for e in reversed(load(db, (VERIFIED, FAILED, PRUNED), None, None, node,
                           newest=recent * 3)):
        p = _parse(e)
        if p is None:
            invalid += 1
        elif isinstance(p, BackupVerified):
            checks.append(CheckOut(ref=e.ref, node=e.node, ts=e.ts, mode=p.mode,
                                   result=p.result, verified=p))
        elif isinstance(p, BackupFailed):
            failures.append(FailureOut(ref=e.ref, node=e.node, ts=e.ts, failed=p))
            if p.stage in ("verify", "drill"):
                mode = "drill" if p.stage == "drill" else "verify"
                checks.append(CheckOut(ref=e.ref, node=e.node, ts=e.ts, mode=mode,
                                       result="failed", failed=p))
        elif isinstance(p, BackupPruned):
            prunes.append(PruneOut(ref=e.ref, node=e.node, ts=e.ts, pruned=p))
    last_checks: dict[str, CheckOut] = {}
    for c in checks:
        last_checks.setdefault(c.mode, c)
    age = (now - snap.ts).total_seconds() / 3600 if snap is not None else None
    names = db.scalars(select(StoredEvent.node).where(StoredEvent.kind.in_(list(KINDS)))
                       .distinct().order_by(StoredEvent.node)).all()
    return StatusOut(
        now=now, last_snapshot=snap, last_good_age_h=age, max_age_h=max_age_h,
        overdue=age is None or age >= max_age_h, last_checks=last_checks,
        checks=checks[:recent], failures=failures[:recent], prunes=prunes[:recent],
        invalid=invalid, nodes=list(names),
    )
