"""Shared builders for the host agent's tests: a policy with room-PC rights, signed presence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.host.presence import PresenceStatement, sign_presence
from controller.policy import Policy

SITE = "hq"
HOST = "pc-01"
HANA = "0102030405060708"  # pc users: hana on pc-01, weekdays 08:00-20:00
KENJI = "1112131415161718"  # pc users + pc admins: kenji and kenji-adm
MIKA = "2122232425262728"  # door only (no host right)
RYO = "3132333435363738"  # inactive
# Monday 2026-12-07 10:00 JST (a working day, not a holiday)
MONDAY_10 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
SUNDAY_10 = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


def policy_dict(version: int = 1, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": version,
        "issued_at": "2026-12-01T00:00:00Z",
        "site": SITE,
        "people": [
            {"id": "hana", "name": "中村 花", "cards": [HANA], "groups": ["pc_users"],
             "host_accounts": ["hana"]},
            {"id": "kenji", "name": "佐藤 健二", "cards": [KENJI],
             "groups": ["pc_users", "pc_admins"], "host_accounts": ["kenji", "kenji-adm"]},
            {"id": "mika", "name": "小林 美香", "cards": [MIKA], "groups": ["door_only"],
             "host_accounts": ["mika"]},
            {"id": "ryo", "name": "山田 亮", "cards": [RYO], "groups": ["pc_users"],
             "host_accounts": ["ryo"], "active": False},
        ],
        "groups": [
            {"id": "pc_users", "name": "PC users", "doors": ["room"], "hosts": [HOST],
             "windows": [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "20:00"}]},
            {"id": "pc_admins", "name": "PC admins", "hosts": [HOST], "host_admin": True},
            {"id": "door_only", "name": "Door only", "doors": ["room"]},
        ],
        "doors": [{"id": "room", "name": "Server room"}],
    }
    data.update(overrides)
    return data


def make_policy(**overrides: Any) -> Policy:
    return Policy.model_validate(policy_dict(**overrides))


def presence_blob(key: Ed25519PrivateKey, present: list[str], *, serial: int = 1,
                  issued_at: datetime = MONDAY_10, door_nodes: dict[str, str] | None = None,
                  site: str = SITE) -> bytes:
    return sign_presence(PresenceStatement(site=site, serial=serial, issued_at=issued_at,
                                           present=present, door_nodes=door_nodes or {}), key)
