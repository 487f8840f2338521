"""A month of print events (releases, denials, expiries) and the totals they must add up to,
computed here from the same list the events are made from."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.printing.events import (
    PRINT_DENIED,
    PRINT_EXPIRED,
    PRINT_RELEASE,
    ExpiredJob,
    PrintDeniedPayload,
    PrintExpiredPayload,
    PrintReleasePayload,
    ReleasedJob,
)
from tests.dashboard.printing.conftest import Feed

# 2026-11-01 00:00 in Tokyo is 2026-10-31 15:00 UTC
MONTH_START = datetime(2026, 10, 31, 15, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
EVIL_PRINTER = "=HYPERLINK(\"http://x\",\"y\")"


@dataclass
class Expect:
    releases: Counter[str] = field(default_factory=Counter)  # person -> releases
    pages: Counter[str] = field(default_factory=Counter)
    jobs: Counter[str] = field(default_factory=Counter)
    printer_releases: Counter[str] = field(default_factory=Counter)
    denials: Counter[str] = field(default_factory=Counter)  # person or "?" -> denials
    reasons: Counter[str] = field(default_factory=Counter)
    expired: Counter[str] = field(default_factory=Counter)  # person or "?" -> jobs
    unknown_pages: int = 0
    events: list[tuple[str, Any, datetime]] = field(default_factory=list)
    before_month: int = 0  # events stored before MONTH_START

    def total(self, c: Counter[str]) -> int:
        return sum(c.values())


def release(person: str, printer: str, job_ids: list[int], pages: int | None,
            copies: int = 1) -> PrintReleasePayload:
    jobs = [ReleasedJob(job_id=j, cups_user=f"u-{person}", copies=copies,
                        pages=None if pages is None else pages) for j in job_ids]
    total = None if pages is None else pages * len(job_ids)
    return PrintReleasePayload(printer=printer, person_id=person, job_ids=job_ids, jobs=jobs,
                               copies=copies * len(job_ids), pages=total)


def month_of_prints() -> Expect:
    """Releases, denials and expiries over November (and two in October, outside the month)."""
    e = Expect()
    job = 100
    t = MONTH_START - timedelta(days=2)
    for person in ("p1", "p2"):  # October: outside the default period
        e.events.append((PRINT_RELEASE, release(person, "mfp-1", [job], 2), t))
        e.before_month += 1
        job += 1
        t += timedelta(hours=1)
    t = MONTH_START + timedelta(hours=1)
    plan = [("p1", "mfp-1", 2, 3), ("p2", "mfp-2", 1, None), ("p1", "mfp-2", 3, 1),
            ("p3", EVIL_PRINTER, 1, 5), ("p2", "mfp-1", 2, 4)]
    for day in range(15):
        for i, (person, printer, njobs, pages) in enumerate(plan):
            if (day + i) % 3 == 0:
                continue
            ids = list(range(job, job + njobs))
            job += njobs
            e.events.append((PRINT_RELEASE, release(person, printer, ids, pages),
                             t + timedelta(days=day, minutes=i)))
            e.releases[person] += 1
            e.jobs[person] += njobs
            e.printer_releases[printer] += 1
            if pages is None:
                e.unknown_pages += 1
            else:
                e.pages[person] += pages * njobs
    denials = [("no_right", "p2", "mfp-1"), ("unknown_card", None, "mfp-1"),
               ("no_jobs", "p1", "mfp-2"), ("printer_stopped", "p1", "mfp-2")]
    for k, (reason, person, printer) in enumerate(denials):
        e.events.append((PRINT_DENIED, PrintDeniedPayload(
            reason=reason, printer=printer, person_id=person,  # type: ignore[arg-type]
            job_ids=[900 + k] if reason == "printer_stopped" else [],
            detail="=cmd|' /C calc'!A0" if reason == "printer_stopped" else None),
            t + timedelta(days=16, minutes=k)))
        e.denials[person or "?"] += 1
        e.reasons[reason] += 1
    owners = [("p1", 1), ("p3", 2), (None, 1)]
    jobs = []
    for person, n in owners:
        for _ in range(n):
            jobs.append(ExpiredJob(job_id=job, cups_user=f"u-{person}", person_id=person,
                                   held_hours=4.5))
            job += 1
            e.expired[person or "?"] += 1
    e.events.append((PRINT_EXPIRED, PrintExpiredPayload(
        printer="mfp-1", job_ids=[j.job_id for j in jobs], jobs=jobs, hold_hours=4.0),
        t + timedelta(days=17)))
    return e


def store(feed: Feed, e: Expect) -> None:
    events = [feed.event(kind, payload, ts) for kind, payload, ts in e.events]
    feed.store(events, NOW)


def per_person(e: Expect) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for p, n in e.releases.items():
        out[p]["releases"] = n
    for p, n in e.pages.items():
        out[p]["pages"] = n
    for p, n in e.jobs.items():
        out[p]["jobs"] = n
    for p, n in e.denials.items():
        out[p]["denials"] = n
    for p, n in e.expired.items():
        out[p]["expired_jobs"] = n
    return {k: dict(v) for k, v in out.items()}
