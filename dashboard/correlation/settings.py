"""Correlation settings (one typed model; unknown keys are errors)."""

from __future__ import annotations

from datetime import time
from functools import cached_property
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CorrelationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "Asia/Tokyo"
    grace_s: int = Field(default=120, ge=0, description="presence slack around an access")
    room_doors: tuple[str, ...] = Field(default=(), description="doors of the controlled area; "
                                        "empty = any door")
    work_days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    hours_start: time = time(8, 0)
    hours_end: time = time(20, 0)
    holidays_off: bool = True
    usb_window_s: int = Field(default=1800, ge=0)
    print_window_s: int = Field(default=4 * 3600, ge=0)
    failed_login_threshold: int = Field(default=3, ge=1)
    failed_login_window_s: int = Field(default=600, ge=1)
    backup_max_age_h: float = Field(default=26.0, gt=0)
    backup_check_time: time = time(9, 0)

    @field_validator("hours_start", "hours_end", "backup_check_time")
    @classmethod
    def _whole_minutes(cls, value: time) -> time:
        if value.second or value.microsecond:
            raise ValueError("give whole minutes (HH:MM)")
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
