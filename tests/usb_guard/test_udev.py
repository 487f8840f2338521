from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support import unavailable
from usb_guard.agent import MAX_SOURCE_FAILURES, Agent
from usb_guard.config import UsbAgentConfig
from usb_guard.errors import UdevError
from usb_guard.policy import UsbPolicy
from usb_guard.simulated import SimulatedUsb, keyboard
from usb_guard.udev import PyudevSource, UEvent

from .conftest import HOST


class _Device:
    """What pyudev hands over, including attributes that fail to read."""

    action = "add"
    subsystem = "usb"
    device_type = "usb_device"
    sys_name = "1-1"
    sys_path = b"/sys/devices/pci0000:00/usb1/1-1\xff"

    @property
    def properties(self) -> dict[str, Any]:
        return {"DEVTYPE": "usb_device", "ID_SERIAL": b"\xfe\xff", "EMPTY": None}

    def __getattr__(self, name: str) -> Any:
        raise KeyError(name)


def test_translate_turns_hostile_device_attributes_into_text() -> None:
    import pyudev

    source = object.__new__(PyudevSource)
    source._pyudev = pyudev
    event = source._translate(_Device())
    assert (event.action, event.subsystem, event.devtype, event.sys_name) == (
        "add", "usb", "usb_device", "1-1")
    assert event.sys_path is not None and event.sys_path.endswith("1-1\ufffd")
    assert event.properties == {"DEVTYPE": "usb_device", "ID_SERIAL": "\ufffd\ufffd"}


@pytest.mark.integration
def test_real_netlink_monitor_opens_polls_and_closes() -> None:
    try:
        source = PyudevSource()
    except UdevError as exc:
        unavailable(f"no udev netlink monitor here: {exc}")
    source.receive(0.01)  # a real event may arrive; either way it must not raise
    source.close()
    with pytest.raises(UdevError, match="closed"):
        source.receive(0.01)


class _FlakySource:
    """Fails like a netlink socket that overflowed, then delivers the simulation's events."""

    def __init__(self, sim: SimulatedUsb, failures: int) -> None:
        self.sim, self.failures = sim, failures
        self.exhausted = threading.Event()
        self.lost: list[str] = []

    def receive(self, timeout: float) -> UEvent | None:
        if self.failures:
            self.failures -= 1
            self.lost.append(self.sim.plug(keyboard()))
            self.sim.drain()  # its events never reach the agent
            raise UdevError("udev monitor failed: [Errno 105] No buffer space available")
        self.exhausted.set()
        return self.sim.receive(timeout)

    def close(self) -> None:
        return None


def _agent(sim: SimulatedUsb, source: Any) -> Agent:
    return Agent(UsbAgentConfig(host=HOST, sysfs_root=sim.sysfs_root, dev_root=sim.dev_root,
                                poll_seconds=0.01),
                 emit=lambda k, d: None, policy_provider=UsbPolicy, source=source)


def test_lost_events_trigger_a_rescan(tmp_path: Path) -> None:
    sim = SimulatedUsb(tmp_path)
    source = _FlakySource(sim, failures=1)
    agent = _agent(sim, source)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,))
    thread.start()
    assert source.exhausted.wait(10)
    stop.set()
    thread.join(10)
    [kbd] = source.lost
    assert sim.is_authorized(kbd)  # only the rescan can have authorised it
    assert agent.stats.errors == 1 and "buffer space" in agent.stats.last_error


def test_agent_gives_up_when_udev_keeps_failing(tmp_path: Path) -> None:
    sim = SimulatedUsb(tmp_path)
    agent = _agent(sim, _FlakySource(sim, failures=MAX_SOURCE_FAILURES + 1))
    with pytest.raises(UdevError):
        agent.run(threading.Event())
