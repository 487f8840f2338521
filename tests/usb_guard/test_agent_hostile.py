"""Malformed descriptors, hostile sysfs values and hostile udev events never crash the agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usb_guard.agent import Agent
from usb_guard.config import UsbAgentConfig
from usb_guard.descriptors import build_descriptors
from usb_guard.policy import UsbPolicy
from usb_guard.simulated import DeviceSpec, SimulatedReadOnly, SimulatedUsb, keyboard
from usb_guard.udev import UEvent

from .conftest import HOST, make_medium

# database=None: no example database written into the working directory
SETTINGS = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


class Rig:
    def __init__(self, root: Path) -> None:
        self.sim = SimulatedUsb(root)
        self.events: list[Any] = []
        medium, self.token = make_medium()
        self.agent = Agent(
            UsbAgentConfig(host=HOST, sysfs_root=self.sim.sysfs_root, dev_root=self.sim.dev_root),
            emit=lambda k, d: self.events.append(d),
            policy_provider=lambda: UsbPolicy(media=(medium,)),
            source=self.sim, read_only=SimulatedReadOnly(self.sim))
        self.agent.start()

    def pump(self) -> None:
        while batch := self.sim.drain():
            for event in batch:
                self.agent.handle(event)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Rig:
    return Rig(tmp_path_factory.mktemp("hostile"))

valid_prefix = build_descriptors(0x0781, 0x5583, [(8, 6, 0x50)])


@SETTINGS
@given(raw=st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=80).map(lambda tail: valid_prefix[:18] + tail),
    st.integers(0, len(valid_prefix) - 1).map(lambda n: valid_prefix[:n]),
    st.tuples(st.integers(18, len(valid_prefix) - 1), st.integers(0, 255)).map(
        lambda t: valid_prefix[: t[0]] + bytes([t[1]]) + valid_prefix[t[0] + 1 :]),
))
def test_malformed_descriptors_block_and_never_crash(rig: Rig, raw: bytes) -> None:
    before = rig.agent.stats.errors
    name = rig.sim.plug(DeviceSpec(0x0781, 0x5583, ((8, 6, 0x50),), "AA0001",
                                   raw_descriptors=raw))
    rig.pump()
    assert rig.agent.stats.errors == before
    event = rig.events[-1]
    assert event.device == name
    if event.rule == "malformed_descriptors":
        assert not rig.sim.is_authorized(name)
        assert event.verdict == "block"
    rig.sim.unplug(name)
    rig.pump()


def test_truncated_descriptors_are_blocked_with_a_reason(rig: Rig) -> None:
    name = rig.sim.plug(DeviceSpec(0x046D, 0xC31C, ((3, 1, 1),), raw_descriptors=b"\x12\x01"))
    rig.pump()
    assert not rig.sim.is_authorized(name)
    assert rig.events[-1].rule == "malformed_descriptors"
    assert "truncated" in rig.events[-1].reason


hostile_text = st.one_of(st.none(), st.text(max_size=40), st.integers(), st.binary(max_size=20),
                         st.sampled_from(["../../etc", "1-1", "sda", "usb1", "1-1:1.0", "",
                                          "1-99", "sda/../../x", "1-1\n"]))


@SETTINGS
@given(action=hostile_text, subsystem=st.one_of(hostile_text, st.sampled_from(["usb", "block"])),
       devtype=st.one_of(hostile_text, st.sampled_from([
           "usb_device", "usb_interface", "disk", "partition"])),
       sys_name=hostile_text, sys_path=hostile_text,
       properties=st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5))
def test_hostile_udev_events_never_crash(rig: Rig, action: Any, subsystem: Any, devtype: Any,
                                         sys_name: Any, sys_path: Any,
                                         properties: dict[str, str]) -> None:
    rig.agent.handle(UEvent(action, subsystem, devtype, sys_name, sys_path, properties))


@SETTINGS
@given(serial=st.binary(max_size=300), vid=st.binary(max_size=10))
def test_hostile_sysfs_values_never_crash(rig: Rig, serial: bytes, vid: bytes) -> None:
    name = rig.sim.plug(keyboard())
    rig.pump()
    base = rig.sim.devices_dir / name
    (base / "serial").write_bytes(serial)
    (base / "idVendor").write_bytes(vid)
    before = rig.agent.stats.errors
    rig.agent.handle(UEvent("add", "usb", "usb_device", name, None, {}))
    assert rig.agent.stats.errors == before
    event = rig.events[-1]
    assert event.device == name
    if event.vendor_id is None:
        assert event.verdict == "block" and not rig.sim.is_authorized(name)
    rig.sim.unplug(name)
    rig.pump()


def test_event_for_a_vanished_device_is_counted_not_raised(rig: Rig) -> None:
    errors = rig.agent.stats.errors
    rig.agent.handle(UEvent("add", "usb", "usb_device", "9-9", "/sys/devices/x/9-9", {}))
    assert rig.agent.stats.errors == errors + 1
    assert "gone" in rig.agent.stats.last_error
