"""The calendar of nights and the status over events stored by the real ingest core."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session, sessionmaker

from dashboard.backups import queries as Q
from tests.dashboard.backups.seed import (
    FAILED_THEN_DONE,
    LATE,
    NOTHING,
    NOW,
    ONLY_FAILED,
    TOKYO,
    last_snapshot,
    local,
    november,
)
from tests.dashboard.printing.conftest import Feed


def test_calendar_marks_every_night_of_the_month(sm: sessionmaker[Session], feed: Feed) -> None:
    events, expect = november()
    feed.store([feed.event(k, p, ts) for k, p, ts in events], NOW)
    with sm() as db:
        cal = Q.calendar(db, date(2026, 11, 1), TOKYO, NOW)
    got = {n.day: n.status for n in cal.nights}
    assert got == expect
    assert cal.done == sum(s == "done" for s in expect.values())
    assert cal.failed == 1 and cal.missing == 2
    night = {n.day: n for n in cal.nights}
    assert night[ONLY_FAILED].errors == ["disk_full"] and night[ONLY_FAILED].snapshots == 0
    assert night[FAILED_THEN_DONE].failed_runs == 1 and night[FAILED_THEN_DONE].snapshots == 1
    assert night[NOTHING].refs == []
    # 00:30 local is the previous day in UTC: the night is still the local date
    assert night[LATE].snapshots == 1 and night[LATE - timedelta(days=1)].snapshots == 1
    weeks = Q.weeks(cal)
    assert all(len(w) == 7 for w in weeks)
    assert weeks[0].index(night[date(2026, 11, 1)]) == date(2026, 11, 1).weekday()


def test_today_is_pending_until_its_run(sm: sessionmaker[Session], feed: Feed) -> None:
    events, _ = november()
    early = local(date(2026, 11, 22), 1)  # before today's 02:10 run
    feed.store([feed.event(k, p, ts) for k, p, ts in events if ts <= early], early)
    with sm() as db:
        cal = Q.calendar(db, date(2026, 11, 1), TOKYO, early)
    assert {n.day: n.status for n in cal.nights}[date(2026, 11, 22)] == "pending"
    with sm() as db:
        october = Q.calendar(db, date(2026, 10, 1), TOKYO, early)
    assert {n.status for n in october.nights} == {"missing"} and len(october.nights) == 31


def test_status_last_snapshot_checks_failures(sm: sessionmaker[Session], feed: Feed) -> None:
    events, _ = november()
    feed.store([feed.event(k, p, ts) for k, p, ts in events], NOW)
    snap, ts = last_snapshot(events)
    with sm() as db:
        st = Q.status(db, NOW)
    assert st.last_snapshot is not None and st.last_snapshot.snapshot == snap
    assert st.last_snapshot.ts == ts
    assert st.last_good_age_h is not None
    assert abs(st.last_good_age_h - (NOW - ts).total_seconds() / 3600) < 1e-9
    assert not st.overdue
    assert st.last_checks["structure"].result == "ok"
    assert st.last_checks["drill"].result == "failed"
    assert st.last_checks["drill"].verified and st.last_checks["drill"].verified.mismatches == 2
    assert st.last_checks["verify"].failed and st.last_checks["verify"].failed.error == "integrity"
    assert [f.failed.stage for f in st.failures] == ["verify", "run", "run"]
    assert st.prunes[0].pruned.snapshots_removed == 3
    assert st.nodes == ["gw1"] and st.invalid == 0
    with sm() as db:
        later = Q.status(db, ts + timedelta(hours=26))
    assert later.overdue


def test_bad_month_is_refused() -> None:
    for bad in ("2026-13", "26-11", "", "2026-11-01"):
        try:
            Q.parse_month(bad)
        except Q.BackupQueryError:
            continue
        raise AssertionError(bad)
