"""Shared builders for the policy, access and door tests (no fixtures with hidden state)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from controller.events import payload_error
from controller.policy import Policy

JST = ZoneInfo("Asia/Tokyo")
SITE = "hq"

ALICE = "04A1B2C3D4E5F6"  # staff: main + side doors, weekdays 09-18, printer prn1
BOB = "0123456789ABCDEF"  # admins (24/7, every door) and rackops
CAROL = "0A0B0C0D"  # rackops + staff
DAVE = "11223344"  # inactive
ERIN = "55667788"  # valid until 2026-11-20
FRANK = "99AABBCC"  # valid from 2026-12-01
GINA = "DDEEFF00"  # in no group
HANA = "12121212"  # holiday crew: side door every day 09-18, holidays too
UNKNOWN = "DEADBEEF"

WEEKDAYS = [0, 1, 2, 3, 4]


def policy_dict(**overrides: Any) -> dict[str, Any]:
    """A policy as the dashboard would author it; pass top-level overrides."""
    office = {"days": WEEKDAYS, "start": "09:00", "end": "18:00"}
    data: dict[str, Any] = {
        "version": 1,
        "issued_at": "2026-11-01T00:00:00Z",
        "site": SITE,
        "people": [
            {
                "id": "alice",
                "name": "Alice",
                "cards": ["04:a1:b2:c3:d4:e5:f6"],
                "groups": ["staff"],
                "operator_ids": ["op-7"],
                "cups_users": ["alice"],
            },
            {"id": "bob", "name": "Bob", "cards": [BOB], "groups": ["admins", "rackops"]},
            {"id": "carol", "name": "Carol", "cards": [CAROL], "groups": ["rackops", "staff"]},
            {"id": "dave", "name": "Dave", "cards": [DAVE], "groups": ["staff"], "active": False},
            {
                "id": "erin",
                "name": "Erin",
                "cards": [ERIN],
                "groups": ["staff"],
                "valid_until": "2026-11-20",
            },
            {
                "id": "frank",
                "name": "Frank",
                "cards": [FRANK],
                "groups": ["staff"],
                "valid_from": "2026-12-01",
            },
            {"id": "gina", "name": "Gina", "cards": [GINA]},
            {"id": "hana", "name": "Hana", "cards": [HANA], "groups": ["holiday_crew"]},
        ],
        "groups": [
            {
                "id": "staff",
                "name": "Staff",
                "doors": ["main", "side"],
                "printers": ["prn1"],
                "windows": [office],
            },
            {
                "id": "admins",
                "name": "Admins",
                "doors": ["main", "side", "rack"],
                "printers": ["prn1", "prn2"],
            },
            {"id": "rackops", "name": "Rack operators", "doors": ["rack"], "windows": [office]},
            {
                "id": "holiday_crew",
                "name": "Holiday crew",
                "doors": ["side"],
                "windows": [{"days": list(range(7)), "start": "09:00", "end": "18:00"}],
                "on_holidays": True,
            },
        ],
        "doors": [
            {"id": "main", "name": "Room door", "anti_passback": True},
            {"id": "side", "name": "Side door"},
            {"id": "rack", "name": "Server rack", "two_person": True, "two_person_window_s": 10},
        ],
        "printers": ["prn1", "prn2"],
    }
    data.update(overrides)
    return data


def make_policy(**overrides: Any) -> Policy:
    return Policy.model_validate(policy_dict(**overrides))


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=JST)  # type: ignore[arg-type,misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type,misc]


class Recorder:
    """An ``emit`` callable that keeps (kind, data) in order. Like the node runtime, it takes
    only the model registered for the kind, and keeps the JSON object the journal would."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, data: BaseModel) -> None:
        refused = payload_error(kind, data)
        if refused is not None:
            raise AssertionError(refused)
        self.events.append((kind, data.model_dump(mode="json")))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for k, d in self.events if k == kind]

    def clear(self) -> None:
        self.events.clear()
