from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from readers.base import CardTap, ReaderRole, role_for

ROLES = {
    "Sony FeliCa Port/PaSoRi 4.0": ReaderRole.DOOR_IN,
    "Sony FeliCa Port/PaSoRi 4.0 01": ReaderRole.DOOR_OUT,
    "ACS ACR1252 Dual Reader [ACR1252 Dual Reader PICC] 00 00": ReaderRole.PRINTER,
}


def test_role_exact_name_wins() -> None:
    name = "ACS ACR1252 Dual Reader [ACR1252 Dual Reader PICC] 00 00"
    assert role_for(name, ROLES) is ReaderRole.PRINTER


def test_role_longest_prefix_wins() -> None:
    assert role_for("Sony FeliCa Port/PaSoRi 4.0 00 00", ROLES) is ReaderRole.DOOR_IN
    assert role_for("Sony FeliCa Port/PaSoRi 4.0 01 00", ROLES) is ReaderRole.DOOR_OUT


def test_unknown_reader_has_no_role() -> None:
    assert role_for("Other Reader 00 00", ROLES) is None
    assert role_for("Other", {"": ReaderRole.RACK_A}) is None


def test_roles_have_config_values() -> None:
    assert [r.value for r in ReaderRole] == ["door_in", "door_out", "printer", "rack_a", "rack_b"]
    assert ReaderRole("rack_b") is ReaderRole.RACK_B


def test_tap_is_frozen() -> None:
    tap = CardTap("r", "01020304", "3B00", datetime.now(UTC), 2.0, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tap.uid = "FFFFFFFF"  # type: ignore[misc]
