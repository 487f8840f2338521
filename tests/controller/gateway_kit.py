"""Builds a gateway's files for tests: node key, admin key, signed policy, config."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from controller.config import GatewayConfig, parse_config
from controller.envelope import Event, parse
from controller.keys import generate
from controller.mqtt import MqttLink, MqttSettings
from controller.policy import DoorRule, Group, Person, Policy, sign_policy

SITE = "hq"
DOOR = "server-room"
ALICE_UID = "04A1B2C3D4E5F6"
BOB_UID = "0102030405060708"
MALLORY_UID = "DEADBEEF"  # not in the policy


def make_policy(version: int = 1, *, alice_groups: tuple[str, ...] = ("staff",)) -> Policy:
    return Policy(
        version=version,
        issued_at=datetime(2026, 11, 1, tzinfo=UTC),
        site=SITE,
        people=[
            Person(id="alice", name="Alice", cards=[ALICE_UID], groups=list(alice_groups)),
            Person(id="bob", name="Bob", cards=[BOB_UID], groups=["staff"]),
        ],
        groups=[Group(id="staff", name="Staff", doors=[DOOR])],
        doors=[DoorRule(id=DOOR, name="Server room")],
    )


@dataclass
class GatewayKit:
    root: Path
    config: GatewayConfig
    admin_key: Any
    config_path: Path

    def signed(self, policy: Policy) -> bytes:
        return sign_policy(policy, self.admin_key)


def make_kit(
    root: Path,
    *,
    mqtt_port: int,
    reader_prefix: str = "Virtual PCD",
    backend: str = "pcsc",
    unlock_s: float = 5.0,
    policy: Policy | None = None,
    bindings: list[dict[str, Any]] | None = None,
    printing: dict[str, Any] | None = None,
    site: str = SITE,
    trust: Path | None = None,
    node: str = "gw1",
    extra_doors: tuple[str, ...] = (),
    cameras: dict[str, Any] | None = None,
) -> GatewayKit:
    """A gateway's files under ``root``. With ``trust`` (a policy public key file, e.g. the
    dashboard's) the gateway takes its policy from the broker only; else from a file signed by
    a fresh admin key."""
    root.mkdir(parents=True, exist_ok=True)
    generate(root / "node.key")
    admin = generate(root / "admin.key")
    policy_file = root / "policy.signed"
    policy_file.write_bytes(sign_policy(policy or make_policy(), admin))
    data: dict[str, Any] = {
        "node": {"name": node, "site": site, "data_dir": str(root), "clock": "synced"},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "backoff_min_s": 0.05,
                 "backoff_max_s": 0.5},
        "gpio": {"backend": "mock"},
        "readers": {
            "backend": backend,
            "bindings": bindings or [
                {"name": f"{reader_prefix} 00 00", "role": "door_in", "door": DOOR},
                {"name": f"{reader_prefix} 00 01", "role": "door_out", "door": DOOR},
            ],
        },
        "doors": [{"id": DOOR, "relay_pin": 17, "contact_pin": 27, "rex_pin": 22,
                   "unlock_s": unlock_s}]
        + [{"id": d, "relay_pin": 5 + i, "unlock_s": unlock_s} for i, d in enumerate(extra_doors)],
        "policy": {"trusted_keys": ["admin.key.pub"], "file": "policy.signed"}
        if trust is None else {"trusted_keys": [str(trust)]},
    }
    if printing is not None:
        data["printing"] = printing
    if cameras is not None:
        data["cameras"] = cameras
    config_path = root / "gateway.toml"
    config_path.write_text(tomli_w.dumps(data))
    return GatewayKit(root, parse_config(data, base=root), admin, config_path)


class EventCollector:
    """Subscribes to every node's events on a broker; lets a test await what arrives."""

    def __init__(self, port: int, client_id: str = "collector") -> None:
        self.events: dict[tuple[str, int], Event] = {}
        self.arrivals: list[Event] = []  # in arrival order, duplicates included
        self._cond = threading.Condition()
        self.link = MqttLink(MqttSettings(host="127.0.0.1", port=port, backoff_min_s=0.05,
                                          backoff_max_s=0.5), client_id=client_id)
        self.link.subscribe("secroom/v1/+/+/events/#", self._on_message)

    def start(self, timeout: float = 10.0) -> EventCollector:
        self.link.start()
        # connected is not subscribed: an event published before the SUBACK would be missed
        if not self.link.wait_subscribed(timeout):
            raise TimeoutError(f"collector not subscribed: {self.link.last_error}")
        return self

    def stop(self) -> None:
        self.link.stop()

    def _on_message(self, _topic: str, payload: bytes) -> None:
        event = parse(payload)
        with self._cond:
            self.events.setdefault((event.node, event.seq), event)
            self.arrivals.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """The first event (in arrival order) matching ``predicate``, waiting up to ``timeout``."""
        seen = 0
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.arrivals[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.arrivals)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    kinds = [e.kind for e in self.arrivals[-10:]]
                    raise TimeoutError(f"no matching event within {timeout}s; last kinds {kinds}")
                self._cond.wait(remaining)

    def wait_count(self, node: str, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(1 for n, _ in self.events if n == node) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    have = sum(1 for n, _ in self.events if n == node)
                    raise TimeoutError(f"{have}/{count} events of {node} after {timeout}s")
                self._cond.wait(remaining)

    def after(self, mark: int) -> list[Event]:
        with self._cond:
            return list(self.arrivals[mark:])

    def mark(self) -> int:
        with self._cond:
            return len(self.arrivals)
