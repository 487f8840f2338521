"""The running dashboard backs its database up every night at ``[dashboard.backup] schedule``
(local time), as a child process, and records the run."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from backup.repo import Repository
from dashboard.db import make_engine, make_sessionmaker
from dashboard.models.recovery import DatabaseBackup
from dashboard.recovery.job import TAG, NightlyDatabaseBackup
from dashboard.runtime import build_runtime
from dashboard.settings import load_settings
from tests.dashboard.recovery.test_backup_recover import make_site
from tests.support import wait_until


def test_the_night_comes_and_the_database_is_backed_up(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")
    settings = load_settings(site.config)
    assert settings.backup is not None
    runtime = build_runtime(settings, config_path=site.config)
    [nightly] = [p for p in runtime.parts if isinstance(p, NightlyDatabaseBackup)]
    just_before = datetime(2026, 12, 7, 1, 29, 59, 700000, tzinfo=ZoneInfo("Asia/Tokyo"))
    times = iter([just_before])  # then a minute later: the next night is tomorrow
    part = NightlyDatabaseBackup(site.config, settings.backup, settings.timezone,
                                 clock=lambda: next(times, just_before + timedelta(minutes=1)))
    assert nightly.command() == part.command()
    part.start()
    try:
        wait_until(lambda: part.last_exit is not None, 120, "the nightly run (a child process)")
    finally:
        part.stop()
    assert part.last_exit == 0 and part.runs == 1
    [snap] = Repository.open(site.repo).snapshots()
    assert snap.header.tag == TAG
    engine = make_engine(site.url)
    with make_sessionmaker(engine)() as db:
        row = db.scalar(select(DatabaseBackup))
        assert row is not None and row.result == "ok" and row.snapshot_id == snap.header.id
    engine.dispose()
