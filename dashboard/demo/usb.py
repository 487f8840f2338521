"""The demo's USB host "pc-01": a dozen numbered media in the dashboard's ledger, a simulated
sysfs, and the usb_guard Agent running as its own node (journal, signatures, MQTT).

The agent follows the dashboard's signed policy over MQTT (its ``usb`` section is built from the
media ledger), exactly as `secroom usb agent` on a room host does; usb.inserted / usb.removed
events are journaled, signed, published and ingested.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from controller.mqtt import MqttSettings
from controller.runtime import NodeRuntime, RuntimeSettings
from dashboard.demo import seed

HOST = "pc-01"
ACTOR = "demo-setup"
MEDIA = 12


@dataclass(frozen=True)
class DemoStick:
    key: str
    label: str
    serial: str
    control_number: str | None  # the token written on it (None: an unregistered stick)
    token: bytes | None


def _token(i: int) -> bytes:
    return hashlib.sha256(f"demo-medium-token-{i}".encode()).digest()[:32]


def seed_media(sm: Any, now: datetime) -> list[DemoStick]:
    """Register ``MEDIA`` numbered sticks in the dashboard's ledger (audited service calls):
    most stored in the room, two checked out (one overdue), one lost; returns the sticks the
    simulator can plug in, plus an unregistered one and a clone of USB-0001."""
    from dashboard.media import service
    from usb_guard.ledger import ControlNumbering
    from usb_guard.medium_token import token_digest
    from usb_guard.simulated import storage_stick

    staff = seed.staff()
    sticks: list[DemoStick] = []
    with sm.begin() as db:
        for i in range(MEDIA):
            # a fresh ledger numbers from USB-0001; the token must name its number up front
            number = ControlNumbering().allocate(i)[0]
            token = _token(i)
            serial = f"DEMO{i + 1:04d}"
            custodian = staff[20 + i % 6].id  # the IT team keeps the media
            row = service.register_medium(db, ACTOR, {
                "vendor_id": "0781", "product_id": "5583", "serial": serial,
                "interfaces": ["08:06:50"],  # the token is bound to the simulated stick
                "token_digest": token_digest(token, number, storage_stick(serial).binding()),
                "make": "SanDisk", "model": "Ultra Fit 32GB", "capacity": "32 GB",
                "custodian": custodian, "hosts": [HOST],
            }, now=now - timedelta(days=40))
            if row.control_number != number:
                raise RuntimeError(f"the demo ledger is not fresh ({row.control_number})")
            sticks.append(DemoStick(number, f"{number} (registered)", serial, number, token))
        service.check_out(db, ACTOR, sticks[3].key, {
            "holder": staff[1].id, "purpose": "年末調整データの税理士事務所への受け渡し",
            "due_back": now + timedelta(days=2), "approved_by": staff[0].id,
        }, now=now - timedelta(days=1))
        service.check_out(db, ACTOR, sticks[4].key, {
            "holder": staff[5].id, "purpose": "社会保険手続きの電子申請",
            "due_back": now - timedelta(days=3), "approved_by": staff[0].id,
        }, now=now - timedelta(days=6))  # overdue: an anomaly to review
        service.mark_lost(db, ACTOR, sticks[11].key, {"note": "棚卸しで所在不明"},
                          now=now - timedelta(days=2))
    first = sticks[0]
    return [*sticks[:3], sticks[11],
            DemoStick("unknown", "unregistered stick (私物)", "PRIVATE01", None, None),
            DemoStick("clone", f"clone of {first.key} (wrong token)", first.serial,
                      first.control_number, b"\0" * 32)]


class DemoUsb:
    """The simulated host and its agent; ``plug``/``unplug`` act on the simulated kernel."""

    def __init__(self, run_dir: Path, sm: Any, sticks: list[DemoStick], broker_port: int,
                 policy_key: Path) -> None:
        from usb_guard.simulated import SimulatedUsb

        self.run_dir = run_dir
        self.sm = sm
        self.stick_list = sticks
        self.sim = SimulatedUsb(run_dir / "host")
        self.runtime = NodeRuntime(RuntimeSettings(
            node=HOST, site=seed.SITE, journal=run_dir / "journal.sqlite",
            key_file=run_dir / "node.key", mqtt=MqttSettings(port=broker_port),
            trusted_keys=[policy_key]))
        self._plugged: dict[str, str] = {}  # stick key -> simulated device name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.policy_key = policy_key
        self.policies: Any = None
        self._thread: threading.Thread | None = None
        self.agent: Any = None

    @property
    def key_file(self) -> Path:
        return self.run_dir / "node.key"

    def _usb_policy(self) -> Any:
        policy = self.policies.current if self.policies is not None else None
        return policy.usb if policy is not None else None

    def start(self) -> None:
        from controller.keys import generate, load_public
        from controller.policy_slice import NodeScope
        from controller.policy_store import PolicyStore
        from usb_guard.agent import Agent
        from usb_guard.config import UsbAgentConfig
        from usb_guard.simulated import SimulatedReadOnly

        generate(self.key_file)
        self.runtime.start()
        # the agent's slice: the media usable on its host (it declares that in its state)
        self.policies = PolicyStore(self.run_dir / "policy.json", [load_public(self.policy_key)],
                                    site=seed.SITE, emit=self.runtime.emit, node=HOST,
                                    scope=NodeScope(hosts=frozenset({HOST}), usb=True).as_dict())
        self.runtime.follow_policy(self.policies.status)
        self.policies.on_status = self.runtime.refresh_state
        self.policies.follow(self.runtime.subscribe)
        config = UsbAgentConfig(host=HOST, sysfs_root=self.sim.sysfs_root,
                                dev_root=self.sim.dev_root, poll_seconds=0.2)
        self.agent = Agent(config, emit=self.runtime.emit, policy_provider=self._usb_policy,
                           source=self.sim, read_only=SimulatedReadOnly(self.sim))
        self._thread = threading.Thread(target=self.agent.run, args=(self._stop,),
                                        name="demo-usb-agent", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.runtime.stop()
        self.sim.close()

    def sticks(self) -> list[tuple[str, str]]:
        return [(s.key, s.label) for s in self.stick_list]

    def plugged(self) -> list[str]:
        with self._lock:
            return sorted(self._plugged)

    def plug(self, key: str) -> str:
        from usb_guard.medium_token import MediumToken
        from usb_guard.simulated import storage_stick

        stick = next(s for s in self.stick_list if s.key == key)
        with self._lock:
            if key in self._plugged:
                return f"{stick.label} is already plugged in"
            token = (MediumToken(stick.control_number, stick.token)
                     if stick.control_number and stick.token else None)
            self._plugged[key] = self.sim.plug(storage_stick(stick.serial, token))
        return f"plugged {stick.label} into {HOST}"

    def unplug(self, key: str) -> str:
        with self._lock:
            name = self._plugged.pop(key, None)
            if name is None:
                return f"{key} is not plugged in"
            self.sim.unplug(name)
        return f"unplugged {key} from {HOST}"
