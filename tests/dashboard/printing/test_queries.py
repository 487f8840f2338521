"""Print records and totals over events stored by the real ingest core."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from controller.printing.events import PRINT_DENIED, PRINT_EXPIRED, PRINT_RELEASE
from dashboard.printing import queries as Q
from tests.dashboard.printing.conftest import Feed
from tests.dashboard.printing.seed import MONTH_START, NOW, month_of_prints, per_person, store


def test_summary_per_person_and_printer(sm: sessionmaker[Session], feed: Feed) -> None:
    e = month_of_prints()
    store(feed, e)
    with sm() as db:
        s = Q.summary(db, Q.PrintFilter(since=MONTH_START))
    assert s.invalid == 0
    assert s.total.releases == e.total(e.releases)
    assert s.total.pages == e.total(e.pages)
    assert s.total.pages_unknown == e.unknown_pages > 0
    assert s.total.denials == e.total(e.denials)
    assert s.total.expired_jobs == e.total(e.expired)
    assert s.denials_by_reason == dict(e.reasons)
    want = per_person(e)
    got = {p.person_id: {k: v for k, v in p.model_dump().items()
                         if k in ("releases", "pages", "jobs", "denials", "expired_jobs") and v}
           for p in s.by_person}
    assert got == want
    assert {p.printer: p.releases for p in s.by_printer if p.releases} == dict(e.printer_releases)
    # everything, October included
    with sm() as db:
        everything = Q.summary(db, Q.PrintFilter())
    assert everything.total.releases == e.total(e.releases) + e.before_month


def test_filters_person_printer_kind_period(sm: sessionmaker[Session], feed: Feed) -> None:
    e = month_of_prints()
    store(feed, e)
    with sm() as db:
        mine, nxt = Q.records(db, Q.PrintFilter(since=MONTH_START, person_id="p1"), limit=500)
        assert nxt is None
        assert {r.kind for r in mine} == {PRINT_RELEASE, PRINT_DENIED, PRINT_EXPIRED}
        releases = [r for r in mine if r.kind == PRINT_RELEASE]
        assert len(releases) == e.releases["p1"]
        assert all(r.person_id == "p1" for r in releases)
        expired = [r for r in mine if r.kind == PRINT_EXPIRED]
        # only p1's jobs of the shared expiry are shown under p1
        assert len(expired) == 1 and len(expired[0].jobs) == e.expired["p1"]
        assert all(j.person_id == "p1" for j in expired[0].jobs)
        # a person with no expired job does not get the expiry event
        p2 = Q.records(db, Q.PrintFilter(person_id="p2", kinds=(PRINT_EXPIRED,)), limit=50)[0]
        assert p2 == []

        by_printer = Q.summary(db, Q.PrintFilter(since=MONTH_START, printer="mfp-2"))
        assert by_printer.total.releases == e.printer_releases["mfp-2"]
        assert {p.printer for p in by_printer.by_printer} == {"mfp-2"}

        denied = Q.records(db, Q.PrintFilter(kinds=(PRINT_DENIED,)), limit=50)[0]
        assert len(denied) == e.total(e.denials)
        assert {r.reason for r in denied} == set(e.reasons)

        first_day = Q.summary(db, Q.PrintFilter(since=MONTH_START,
                                                until=MONTH_START + timedelta(days=1)))
        day_events = [x for x in e.events if MONTH_START <= x[2] < MONTH_START
                      + timedelta(days=1) and x[0] == PRINT_RELEASE]
        assert first_day.total.releases == len(day_events) > 0


def test_paging_is_complete_and_newest_first(sm: sessionmaker[Session], feed: Feed) -> None:
    e = month_of_prints()
    store(feed, e)
    seen = []
    before = None
    with sm() as db:
        while True:
            page, before = Q.records(db, Q.PrintFilter(), limit=7, before_id=before)
            seen.extend(page)
            if before is None:
                break
    assert len(seen) == len(e.events)
    ids = [r.id for r in seen]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)


def test_a_payload_that_does_not_fit_is_shown_and_counted(
    sm: sessionmaker[Session], feed: Feed
) -> None:
    good = month_of_prints().events[0]
    bad = feed.event(PRINT_RELEASE, {"printer": "mfp-1", "person_id": "p9", "jobs": "x"},
                     NOW - timedelta(hours=1))
    feed.store([feed.event(good[0], good[1], NOW - timedelta(hours=2)), bad], NOW)
    with sm() as db:
        s = Q.summary(db, Q.PrintFilter())
        recs, _ = Q.records(db, Q.PrintFilter(person_id="p9"), limit=10)
    assert s.invalid == 1 and s.total.releases == 1
    assert len(recs) == 1 and not recs[0].valid and recs[0].printer == "mfp-1"


def test_output_records_count_releases_only(sm: sessionmaker[Session], feed: Feed) -> None:
    e = month_of_prints()
    store(feed, e)
    with sm() as db:
        rows = Q.output_records(db, MONTH_START, NOW)
    assert {r.person_id: r.releases for r in rows} == dict(e.releases)
    assert all(r.denials == 0 and r.expired_jobs == 0 for r in rows)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="not a print event kind"):
        Q.PrintFilter(kinds=("door.access",))
