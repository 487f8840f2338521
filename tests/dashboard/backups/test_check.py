"""The 26-hour check: fires at 26 h + 1 s, not at 25 h 59 min; one alarm per day, shared with
the correlation's morning check; the periodic runner."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.backups.check import BackupWatch, check_backup_age
from dashboard.bus import Bus
from dashboard.correlation.engine import Correlator
from dashboard.models.anomalies import Anomaly
from tests.dashboard.backups.seed import failed, snapshot
from tests.dashboard.printing.conftest import Feed

SNAP_AT = datetime(2026, 11, 20, 17, 10, tzinfo=UTC)  # 02:10 on the 21st in Tokyo


def alarms(sm: sessionmaker[Session]) -> list[Anomaly]:
    with sm() as db:
        return list(db.scalars(select(Anomaly).where(Anomaly.kind == "corr.backup_missing")))


def test_fires_after_26_hours_and_not_before(sm: sessionmaker[Session], feed: Feed) -> None:
    feed.store([feed.event("backup.snapshot", snapshot(1), SNAP_AT),
                # a failed run after it does not count as a good snapshot
                feed.event("backup.failed", failed(), SNAP_AT + timedelta(hours=24))],
               SNAP_AT + timedelta(hours=24))
    with sm.begin() as db:
        quiet = check_backup_age(db, SNAP_AT + timedelta(hours=25, minutes=59))
    assert not quiet.overdue and quiet.last_good == SNAP_AT and alarms(sm) == []
    with sm.begin() as db:
        exact = check_backup_age(db, SNAP_AT + timedelta(hours=26) - timedelta(seconds=1))
    assert not exact.overdue and alarms(sm) == []
    with sm.begin() as db:
        late = check_backup_age(db, SNAP_AT + timedelta(hours=26, seconds=1))
    assert late.overdue and late.new and late.anomaly_id is not None
    (a,) = alarms(sm)
    assert a.id == late.anomaly_id and a.state == "open" and a.severity == "critical"
    assert "26" in a.detail["en"] and a.detail["evidence"]["last_good"]
    # again the same day: the same alarm, not a second one
    with sm.begin() as db:
        again = check_backup_age(db, SNAP_AT + timedelta(hours=30))
    assert again.overdue and not again.new and again.anomaly_id == a.id
    assert len(alarms(sm)) == 1


def test_shares_the_correlation_key(sm: sessionmaker[Session], feed: Feed) -> None:
    feed.store([feed.event("backup.snapshot", snapshot(1), SNAP_AT)], SNAP_AT)
    # the correlation's morning check (09:00 Tokyo on the 22nd = 00:00 UTC) sees the same gap
    morning = datetime(2026, 11, 22, 0, 0, 30, tzinfo=UTC)
    with sm.begin() as db:
        first = check_backup_age(db, SNAP_AT + timedelta(hours=26, seconds=1))
    assert first.new
    with sm.begin() as db:
        corr = Correlator()
        outcome = corr.periodic_outcome(db, morning - timedelta(days=2), morning, morning, [])
        assert first.key in {f.key for f in outcome.found}  # it finds the same gap...
        corr.tick(db, morning)
    assert len(alarms(sm)) == 1  # ...and does not alarm a second time


def test_no_snapshot_ever_is_overdue(sm: sessionmaker[Session]) -> None:
    with sm.begin() as db:
        r = check_backup_age(db, SNAP_AT)
    assert r.overdue and r.last_good is None and r.new
    with sm() as db:
        assert db.scalar(select(func.count()).select_from(Anomaly)) == 1


def test_watch_runs_periodically_and_publishes(sm: sessionmaker[Session], feed: Feed) -> None:
    feed.store([feed.event("backup.snapshot", snapshot(1), SNAP_AT)], SNAP_AT)
    now = [SNAP_AT + timedelta(hours=1)]
    ran = threading.Event()
    bus = Bus()

    def clock() -> datetime:
        ran.set()
        return now[0]

    watch = BackupWatch(sm, interval_s=3600, clock=clock, bus=bus)
    assert not watch.run_once().overdue
    now[0] = SNAP_AT + timedelta(hours=27)
    with bus.subscribe(("anomaly",)) as sub:
        ran.clear()
        watch.start()  # runs once at start, then every interval
        try:
            msg = sub.get(timeout=10)
        finally:
            watch.stop()
    assert ran.is_set() and msg is not None
    assert msg.data["kind"] == "corr.backup_missing" and watch.last and watch.last.overdue
    assert watch.failures == 0
