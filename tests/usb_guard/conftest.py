from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from controller.events import payload_error
from usb_guard.agent import Agent
from usb_guard.config import UsbAgentConfig
from usb_guard.events import KIND_INSERTED, UsbInserted
from usb_guard.medium_token import DeviceBinding, MediumToken, new_token, token_digest
from usb_guard.policy import MediaState, MediumIdentity, RegisteredMedium, UsbPolicy
from usb_guard.simulated import DEFAULT_SECTORS, SimulatedReadOnly, SimulatedUsb

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
HOST = "room-pc1"


def make_medium(control_number: str = "USB-0001", serial: str | None = "AA0001",
                state: MediaState = "in_storage", hosts: tuple[str, ...] = (HOST,),
                read_only: bool = False, sectors: int = DEFAULT_SECTORS,
                **extra: Any) -> tuple[RegisteredMedium, MediumToken]:
    """A medium registered for the simulated ``storage_stick(serial, token)`` of that capacity."""
    token = MediumToken(control_number, new_token())
    binding = DeviceBinding("0781", "5583", serial, sectors)
    medium = RegisteredMedium(
        control_number=control_number,
        identity=MediumIdentity(vendor_id="0781", product_id="5583", serial=serial,
                                interfaces=("08:06:50",)),
        token_digest=token_digest(token.token, control_number, binding),
        state=state, hosts=hosts, read_only=read_only, **extra,
    )
    return medium, token


@dataclass
class Harness:
    sim: SimulatedUsb
    agent: Agent
    ro: SimulatedReadOnly
    policy: UsbPolicy | None
    events: list[tuple[str, Any]] = field(default_factory=list)

    def pump(self) -> None:
        """Deliver every event the simulated kernel has, until it has nothing more to say."""
        while events := self.sim.drain():
            for event in events:
                self.agent.handle(event)

    def inserted(self, device: str) -> list[UsbInserted]:
        return [d for k, d in self.events if k == KIND_INSERTED and d.device == device]

    def final(self, device: str) -> UsbInserted:
        return self.inserted(device)[-1]


@pytest.fixture
def sim(tmp_path: Path) -> SimulatedUsb:
    return SimulatedUsb(tmp_path / "usb")


@pytest.fixture
def harness(sim: SimulatedUsb) -> Harness:
    ro = SimulatedReadOnly(sim)
    h: Harness

    def emit(kind: str, data: BaseModel) -> None:
        refused = payload_error(kind, data)  # the node runtime's check: the kind's own model
        if refused is not None:
            raise AssertionError(refused)
        h.events.append((kind, data))

    config = UsbAgentConfig(host=HOST, sysfs_root=sim.sysfs_root, dev_root=sim.dev_root)
    agent = Agent(config, emit=emit, policy_provider=lambda: h.policy, source=sim,
                  read_only=ro, clock=lambda: NOW)
    h = Harness(sim, agent, ro, UsbPolicy())
    return h
