from __future__ import annotations

from datetime import date, time

import holidays
import pytest
from pydantic import ValidationError

from controller.policy import Group, TimeWindow
from controller.schedule import (
    group_open_at,
    is_japanese_holiday,
    japanese_holiday,
    local_time,
    window_contains,
)
from tests.controller.door_fixtures import JST, jst, utc

OFFICE = TimeWindow(days=[0, 1, 2, 3, 4], start=time(9), end=time(18))


def test_labour_thanksgiving_day_2026_is_a_holiday_and_the_next_day_is_not() -> None:
    assert is_japanese_holiday(date(2026, 11, 23))
    assert japanese_holiday(date(2026, 11, 23)) == holidays.Japan(years=2026)[date(2026, 11, 23)]
    assert not is_japanese_holiday(date(2026, 11, 24))
    assert not is_japanese_holiday(date(2026, 11, 22))  # an ordinary Sunday


def test_substitute_holiday_comes_from_the_package() -> None:
    # 2026-05-03 (Constitution Day) is a Sunday, so the package adds a substitute later that week.
    jp = holidays.Japan(years=2026)
    substitutes = [d for d, name in jp.items() if "ubstitute" in name or "振替" in name]
    assert substitutes, "holidays package lists no substitute holiday for 2026"
    for day in substitutes:
        assert is_japanese_holiday(day)


@pytest.mark.parametrize(
    ("clock", "inside"),
    [
        (time(8, 59, 59, 999999), False),
        (time(9, 0), True),
        (time(17, 59, 59, 999999), True),
        (time(18, 0), False),
    ],
)
def test_window_start_is_inclusive_and_end_exclusive(clock: time, inside: bool) -> None:
    local = jst(2026, 11, 24).replace(
        hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=clock.microsecond
    )
    assert window_contains(OFFICE, local) is inside


def test_window_checks_the_weekday() -> None:
    assert window_contains(OFFICE, jst(2026, 11, 27, 10))  # Friday
    assert not window_contains(OFFICE, jst(2026, 11, 28, 10))  # Saturday


def test_window_ending_at_midnight_covers_the_rest_of_the_day() -> None:
    late = TimeWindow(days=[1], start=time(20), end=time(0))
    assert window_contains(late, jst(2026, 11, 24, 23, 59, 59))
    assert not window_contains(late, jst(2026, 11, 25, 0, 0, 1))  # Wednesday: other day


def test_utc_instant_is_judged_in_site_time_across_the_day_boundary() -> None:
    # Sunday 23:30 UTC is Monday 08:30 JST: before the window; 00:30 UTC Monday is 09:30 JST.
    assert not window_contains(OFFICE, local_time(utc(2026, 11, 29, 23, 30), JST))
    assert window_contains(OFFICE, local_time(utc(2026, 11, 30, 0, 30), JST))
    # 15:30 UTC on the 22nd is already 00:30 on the 23rd (a holiday) in Tokyo.
    assert local_time(utc(2026, 11, 22, 15, 30), JST).date() == date(2026, 11, 23)


def test_holiday_closes_a_windowed_group_unless_it_may_enter_on_holidays() -> None:
    staff = Group(id="staff", name="Staff", windows=[OFFICE])
    crew = Group(id="crew", name="Crew", windows=[OFFICE], on_holidays=True)
    holiday_morning = jst(2026, 11, 23, 10)  # Monday, Labour Thanksgiving Day
    assert not group_open_at(staff, holiday_morning)
    assert group_open_at(crew, holiday_morning)
    assert group_open_at(staff, jst(2026, 11, 24, 10))  # ordinary Tuesday
    assert not group_open_at(crew, jst(2026, 11, 23, 19))  # holiday rights keep the hours


def test_group_without_windows_is_open_at_any_time_even_on_holidays() -> None:
    anytime = Group(id="admins", name="Admins")
    assert group_open_at(anytime, jst(2026, 11, 23, 3))
    assert group_open_at(anytime, jst(2026, 11, 28, 23, 59))


def test_naive_now_is_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="timezone-aware"):
        local_time(datetime(2026, 11, 24, 10), JST)


@pytest.mark.parametrize(
    "window",
    [
        {"days": [0], "start": "18:00", "end": "09:00"},
        {"days": [0], "start": "09:00", "end": "09:00"},
        {"days": [], "start": "09:00", "end": "10:00"},
        {"days": [7], "start": "09:00", "end": "10:00"},
        {"days": [1, 1], "start": "09:00", "end": "10:00"},
    ],
)
def test_bad_windows_are_rejected(window: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TimeWindow.model_validate(window)
