"""Backup events for November 2026 (site time Asia/Tokyo) and the night each day must show."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from backup.events import BackupFailed, BackupPruned, BackupSnapshot, BackupVerified

TOKYO = ZoneInfo("Asia/Tokyo")
TODAY = date(2026, 11, 22)
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=TOKYO).astimezone(UTC)
ONLY_FAILED = date(2026, 11, 5)
NOTHING = date(2026, 11, 6)
FAILED_THEN_DONE = date(2026, 11, 7)
VERIFY_FAILED_ONLY = date(2026, 11, 8)  # a failed verify is not a failed night
LATE = date(2026, 11, 10)  # a run that ended at 00:30 local, 15:30 UTC the day before


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TOKYO).astimezone(UTC)


def snapshot(n: int, files: int = 1200) -> BackupSnapshot:
    return BackupSnapshot(
        snapshot_id=f"snap{n:04d}", started="2026-11-01T17:00:00.000000Z", duration_s=12.5 + n,
        files=files + n, dirs=40, symlinks=2, files_new=n, files_changed=3, files_unchanged=files,
        files_removed=1, bytes_total=5_000_000_000 + n, bytes_read=1_000_000, bytes_new=250_000,
        bytes_stored=90_000, repo_bytes=3_200_000_000 + n, skipped=0)


def failed(stage: str = "run", error: str = "disk_full") -> BackupFailed:
    return BackupFailed(stage=stage, error=error, message="no space left on the target",  # type: ignore[arg-type]
                        exit_code=5, duration_s=3.0)


def november() -> tuple[list[tuple[str, BaseModel, datetime]], dict[date, str]]:
    """(events, expected status per day of November)."""
    events: list[tuple[str, BaseModel, datetime]] = []
    expect: dict[date, str] = {}
    day = date(2026, 11, 1)
    n = 0
    while day.month == 11:
        if day > TODAY:
            expect[day] = "future"
        elif day == ONLY_FAILED:
            events.append(("backup.failed", failed(), local(day, 2, 5)))
            expect[day] = "failed"
        elif day == NOTHING:
            expect[day] = "missing"
        elif day == FAILED_THEN_DONE:
            events.append(("backup.failed", failed(error="locked"), local(day, 2, 1)))
            n += 1
            events.append(("backup.snapshot", snapshot(n), local(day, 3, 0)))
            expect[day] = "done"
        elif day == VERIFY_FAILED_ONLY:
            events.append(("backup.failed", failed("verify", "integrity"), local(day, 4)))
            expect[day] = "missing"
        elif day == LATE:
            n += 1
            events.append(("backup.snapshot", snapshot(n), local(day, 0, 30)))
            expect[day] = "done"
        else:
            n += 1
            events.append(("backup.snapshot", snapshot(n), local(day, 2, 10)))
            expect[day] = "done"
        day += timedelta(days=1)
    # checks and housekeeping (they change no night)
    events.append(("backup.verified", BackupVerified(mode="structure", result="ok",
                                                     duration_s=4.0, packs=321, snapshots=20),
                   local(date(2026, 11, 20), 5)))
    events.append(("backup.verified", BackupVerified(mode="drill", result="failed",
                                                     duration_s=8.0, files_sampled=50,
                                                     mismatches=2, snapshot_id="snap0019"),
                   local(date(2026, 11, 21), 5)))
    events.append(("backup.pruned", BackupPruned(mode="prune", duration_s=2.0,
                                                 snapshots_removed=3, snapshots_kept=17,
                                                 bytes_freed=12345678),
                   local(date(2026, 11, 21), 6)))
    events.sort(key=lambda e: e[2])
    return events, expect


def last_snapshot(events: list[tuple[str, BaseModel, datetime]]) -> tuple[BackupSnapshot, datetime]:
    snap = [(p, ts) for k, p, ts in events if k == "backup.snapshot" and ts <= NOW]
    p, ts = snap[-1]
    assert isinstance(p, BackupSnapshot)
    return p, ts
