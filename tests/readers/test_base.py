from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from readers.base import CardTap, ReaderRole


def test_roles_have_config_values() -> None:
    assert [r.value for r in ReaderRole] == ["door_in", "door_out", "printer", "rack_a", "rack_b"]
    assert ReaderRole("rack_b") is ReaderRole.RACK_B


def test_tap_is_frozen() -> None:
    tap = CardTap("r", "01020304", "3B00", datetime.now(UTC), 2.0, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tap.uid = "FFFFFFFF"  # type: ignore[misc]
