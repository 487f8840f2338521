"""Read-side queries over stored print.* events: records, totals per person and per printer.

Everything here reads the generic events table (the ingest stores each print event as the node
signed it); payloads are validated with the gateway's own models, and one that does not fit is
shown as invalid and counted, never dropped. ``person_id`` is an indexed column for releases and
denials; an expiry names its people per job, so a person filter checks expiries in Python.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from controller.printing.events import (
    PRINT_DENIED,
    PRINT_EXPIRED,
    PRINT_RELEASE,
    PrintDeniedPayload,
    PrintExpiredPayload,
    PrintReleasePayload,
)
from dashboard.models.events import StoredEvent
from dashboard.models.people import Person

KINDS: tuple[str, ...] = (PRINT_RELEASE, PRINT_DENIED, PRINT_EXPIRED)
UNKNOWN = "?"  # the person of a denial by an unknown card, or of an expired job nobody owns


@dataclass(frozen=True)
class PrintFilter:
    """Which print events: period [since, until), person, printer, kinds."""

    since: datetime | None = None
    until: datetime | None = None
    person_id: str | None = None
    printer: str | None = None
    kinds: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        bad = set(self.kinds) - set(KINDS)
        if bad:
            raise ValueError(f"not a print event kind: {sorted(bad)}")


class PrintJobOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: int
    cups_user: str
    person_id: str | None = None
    copies: int | None = None
    pages: int | None = None
    held_hours: float | None = None
    title: str | None = None


class PrintRecordOut(BaseModel):
    """One print event as the pages and the API show it."""

    model_config = ConfigDict(extra="forbid")
    id: int
    node: str
    seq: int
    ts: datetime
    kind: str
    valid: bool  # False: the payload does not fit the model (shown raw, counted)
    printer: str
    person_id: str | None
    person_name: str | None
    job_ids: list[int]
    jobs: list[PrintJobOut]
    copies: int | None = None
    pages: int | None = None
    reason: str | None = None
    detail: str | None = None


class Totals(BaseModel):
    model_config = ConfigDict(extra="forbid")
    releases: int = 0
    jobs: int = 0
    copies: int = 0
    pages: int = 0
    pages_unknown: int = 0  # releases for which CUPS reported no page count
    denials: int = 0
    expired_jobs: int = 0


class PersonTotals(Totals):
    person_id: str
    person_name: str | None = None


class PrinterTotals(Totals):
    printer: str


class PrintSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    total: Totals
    by_person: list[PersonTotals]
    by_printer: list[PrinterTotals]
    denials_by_reason: dict[str, int]
    invalid: int  # stored print events whose payload does not fit the model


def _select(f: PrintFilter, *columns: Any) -> Select[Any]:
    q = select(*columns) if columns else select(StoredEvent)
    q = q.where(StoredEvent.kind.in_(list(f.kinds)))
    if f.since is not None:
        q = q.where(StoredEvent.ts >= f.since)
    if f.until is not None:
        q = q.where(StoredEvent.ts < f.until)
    if f.printer:
        q = q.where(StoredEvent.data["printer"].as_string() == f.printer)
    if f.person_id:
        if PRINT_EXPIRED in f.kinds:
            q = q.where(or_(StoredEvent.person_id == f.person_id,
                            StoredEvent.kind == PRINT_EXPIRED))
        else:
            q = q.where(StoredEvent.person_id == f.person_id)
    return q


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def to_record(ev: Any, names: dict[str, str], person: str | None = None
              ) -> PrintRecordOut | None:
    """The record of one stored event (a StoredEvent or a row with its columns); None when
    ``person`` is given and the event is not theirs."""
    data = ev.data if isinstance(ev.data, dict) else {}
    base: dict[str, Any] = {"id": ev.id, "node": ev.node, "seq": ev.seq, "ts": ev.ts,
                            "kind": ev.kind, "valid": True, "printer": _text(data.get("printer")),
                            "person_id": ev.person_id, "job_ids": [], "jobs": []}
    try:
        if ev.kind == PRINT_RELEASE:
            r = PrintReleasePayload.model_validate(data)
            base.update(person_id=r.person_id, job_ids=r.job_ids, copies=r.copies,
                        pages=r.pages, jobs=[PrintJobOut(
                            job_id=j.job_id, cups_user=j.cups_user, person_id=r.person_id,
                            copies=j.copies, pages=j.pages, title=j.title) for j in r.jobs])
        elif ev.kind == PRINT_DENIED:
            d = PrintDeniedPayload.model_validate(data)
            base.update(person_id=d.person_id, job_ids=d.job_ids, reason=d.reason,
                        detail=d.detail)
        else:
            x = PrintExpiredPayload.model_validate(data)
            jobs = [j for j in x.jobs if person is None or j.person_id == person]
            if person is not None and not jobs:
                return None
            owners = sorted({j.person_id for j in jobs if j.person_id})
            base.update(person_id=owners[0] if len(owners) == 1 else None,
                        job_ids=[j.job_id for j in jobs],
                        jobs=[PrintJobOut(job_id=j.job_id, cups_user=j.cups_user,
                                          person_id=j.person_id, held_hours=j.held_hours)
                              for j in jobs])
    except ValidationError:
        if person is not None and ev.person_id != person:
            return None
        base.update(valid=False, detail="payload does not match the print event model")
    pid = base["person_id"]
    return PrintRecordOut(**base, person_name=names.get(pid) if pid else None)


def person_names(db: Session, ids: set[str]) -> dict[str, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.execute(select(Person.id, Person.name).where(Person.id.in_(sorted(ids)))).all())


def records(db: Session, f: PrintFilter, *, limit: int = 100, before_id: int | None = None
            ) -> tuple[list[PrintRecordOut], int | None]:
    """Newest first (by storage id, like the door log); returns (records, next before_id)."""
    out: list[PrintRecordOut] = []
    cursor = before_id
    batch = max(limit, 50)
    while len(out) < limit:
        q = _select(f)
        if cursor is not None:
            q = q.where(StoredEvent.id < cursor)
        rows = list(db.scalars(q.order_by(StoredEvent.id.desc()).limit(batch)))
        if not rows:
            return out, None
        names = person_names(db, {r.person_id or "" for r in rows} | _expired_people(rows))
        for ev in rows:
            rec = to_record(ev, names, f.person_id)
            if rec is not None:
                out.append(rec)
            cursor = ev.id
            if len(out) == limit:
                more = db.scalar(_select(f, StoredEvent.id).where(StoredEvent.id < ev.id)
                                 .order_by(StoredEvent.id.desc()).limit(1))
                return out, (ev.id if more is not None else None)
        if len(rows) < batch:
            return out, None
    return out, None


def _expired_people(rows: Sequence[StoredEvent]) -> set[str]:
    out: set[str] = set()
    for ev in rows:
        if ev.kind == PRINT_EXPIRED and isinstance(ev.data, dict):
            for j in ev.data.get("jobs") or ():
                if isinstance(j, dict) and isinstance(j.get("person_id"), str):
                    out.add(j["person_id"])
    return out


def iter_records(db: Session, f: PrintFilter, *, batch: int = 2000,
                 max_rows: int = 1_000_000) -> Iterator[PrintRecordOut]:
    """Every matching record, newest first, in bounded batches (CSV export)."""
    before: int | None = None
    sent = 0
    while sent < max_rows:
        page, before = records(db, f, limit=min(batch, max_rows - sent), before_id=before)
        yield from page
        sent += len(page)
        if before is None:
            return


def summary(db: Session, f: PrintFilter) -> PrintSummary:
    """Totals over the filter: overall, per person, per printer, denials per reason."""
    total = Totals()
    people: dict[str, PersonTotals] = {}
    printers: dict[str, PrinterTotals] = {}
    reasons: Counter[str] = Counter()
    invalid = 0
    q = _select(f, StoredEvent.id, StoredEvent.node, StoredEvent.seq, StoredEvent.ts,
                StoredEvent.kind, StoredEvent.person_id, StoredEvent.data)
    for row in db.execute(q.order_by(StoredEvent.id).execution_options(yield_per=1000)):
        rec = to_record(row, {}, f.person_id)
        if rec is None:
            continue
        if not rec.valid:
            invalid += 1
            continue
        if rec.kind == PRINT_EXPIRED:
            for j in rec.jobs:
                for slot in (total, _person(people, j.person_id), _printer(printers, rec.printer)):
                    slot.expired_jobs += 1
            continue
        slots = (total, _person(people, rec.person_id), _printer(printers, rec.printer))
        for slot in slots:
            if rec.kind == PRINT_RELEASE:
                slot.releases += 1
                slot.jobs += len(rec.jobs)
                slot.copies += rec.copies or 0
                if rec.pages is None:
                    slot.pages_unknown += 1
                else:
                    slot.pages += rec.pages
            else:
                slot.denials += 1
        if rec.kind == PRINT_DENIED:
            reasons[rec.reason or UNKNOWN] += 1
    names = person_names(db, set(people))
    for pid, slot in people.items():
        slot.person_name = names.get(pid)
    return PrintSummary(
        total=total,
        by_person=sorted(people.values(), key=lambda p: p.person_id),
        by_printer=sorted(printers.values(), key=lambda p: p.printer),
        denials_by_reason=dict(sorted(reasons.items())),
        invalid=invalid,
    )


def _person(people: dict[str, PersonTotals], pid: str | None) -> PersonTotals:
    key = pid or UNKNOWN
    if key not in people:
        people[key] = PersonTotals(person_id=key)
    return people[key]


def _printer(printers: dict[str, PrinterTotals], name: str) -> PrinterTotals:
    key = name or UNKNOWN
    if key not in printers:
        printers[key] = PrinterTotals(printer=key)
    return printers[key]


def output_records(db: Session, since: datetime, until: datetime) -> list[PersonTotals]:
    """The monthly report's output records: releases, jobs, copies and pages per person."""
    return summary(db, PrintFilter(since=since, until=until, kinds=(PRINT_RELEASE,))).by_person
