from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from backup.schedule import next_run

TOKYO = ZoneInfo("Asia/Tokyo")


def test_before_the_time_runs_today() -> None:
    now = datetime(2026, 11, 22, 1, 30, tzinfo=TOKYO)
    assert next_run(now, time(2, 0), "Asia/Tokyo") == datetime(2026, 11, 22, 2, 0, tzinfo=TOKYO)


def test_at_or_after_the_time_runs_tomorrow() -> None:
    at = datetime(2026, 11, 22, 2, 0, tzinfo=TOKYO)
    assert next_run(at, time(2, 0), "Asia/Tokyo") == at + timedelta(days=1)
    later = datetime(2026, 11, 22, 23, 59, tzinfo=TOKYO)
    assert next_run(later, time(2, 0), "Asia/Tokyo") == at + timedelta(days=1)


def test_utc_input_is_converted() -> None:
    now = datetime(2026, 11, 21, 16, 59, tzinfo=UTC)  # 01:59 in Tokyo
    result = next_run(now, time(2, 0), "Asia/Tokyo")
    assert result.astimezone(UTC) == datetime(2026, 11, 21, 17, 0, tzinfo=UTC)


def test_dst_gap_and_overlap() -> None:
    ny = "America/New_York"
    # 2026-03-08 02:30 does not exist in New York: it runs at 03:30 EDT (same instant as 07:30Z)
    now = datetime(2026, 3, 8, 0, 0, tzinfo=ZoneInfo(ny))
    r = next_run(now, time(2, 30), ny)
    assert r.astimezone(UTC) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    # 2026-11-01 01:30 happens twice: the first one (EDT)
    now = datetime(2026, 11, 1, 0, 0, tzinfo=ZoneInfo(ny))
    r = next_run(now, time(1, 30), ny)
    assert r.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_run(datetime(2026, 1, 1), time(2, 0), "Asia/Tokyo")  # noqa: DTZ001
