"""No file system of an unchecked stick is ever exposed to user space.

The simulated host runs udev's storage rule (``usb_guard.simulated_udev``) and records when a
disk or partition became exposed (udisks shows it, the desktop may mount it); the agent's token
reads and verdicts go into the same timeline, so the order can be checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from usb_guard.agent import Agent
from usb_guard.config import UsbAgentConfig
from usb_guard.descriptors import build_descriptors
from usb_guard.events import KIND_INSERTED
from usb_guard.medium_token import BlockDevice, MediumToken, new_token
from usb_guard.policy import UsbPolicy
from usb_guard.simulated import DeviceSpec, SimulatedReadOnly, SimulatedUsb, storage_stick
from usb_guard.sysfs import usb_device_of

from .conftest import HOST, Harness, make_medium


class _Timeline:
    """Puts the agent's token reads and verdicts into the simulated host's timeline."""

    def __init__(self, harness: Harness) -> None:
        self.sim = harness.sim
        self.disks: dict[str, str] = {}  # usb device -> its disk, as read by the agent
        self.reader = harness.agent.disks.token_reader
        harness.agent.disks.token_reader = self
        emit = harness.agent.emit

        def noting(kind: str, data: BaseModel | Mapping[str, Any]) -> None:
            if kind == KIND_INSERTED and isinstance(data, BaseModel):
                self.sim.udev.note(f"{data.phase}:{data.verdict}", data.device)  # type: ignore[attr-defined]
            emit(kind, data)

        harness.agent.emit = noting

    def read(self, disk: BlockDevice) -> MediumToken:
        self.disks[usb_device_of(disk.sys_path) or "?"] = disk.name
        self.sim.udev.note("token_read", disk.name)
        return self.reader.read(disk)

    def index(self, entry: tuple[str, str]) -> int:
        return self.sim.timeline.index(entry)


def test_a_stick_is_exposed_only_after_its_token_passes_and_a_clone_never(
    harness: Harness,
) -> None:
    medium, token = make_medium()
    harness.policy = UsbPolicy(media=(medium,))
    seen = _Timeline(harness)
    harness.agent.start()
    harness.pump()
    good = harness.sim.plug(storage_stick("AA0001", token))
    clone = harness.sim.plug(storage_stick("AA0001", MediumToken("USB-0001", new_token())))
    harness.pump()

    disk = seen.disks[good]
    assert harness.sim.exposed(disk) and harness.sim.exposed(f"{disk}1")  # usable in the end
    passed = seen.index(("token_check:allow", good))
    assert seen.index(("token_read", disk)) < passed
    for node in (disk, f"{disk}1"):
        assert seen.index(("exposed", node)) > passed, harness.sim.timeline

    bad = seen.disks[clone]
    assert harness.final(clone).verdict == "removed_token_mismatch"
    assert ("token_read", bad) in harness.sim.timeline  # the kernel did create its disk
    assert ("exposed", bad) not in harness.sim.timeline
    assert ("exposed", f"{bad}1") not in harness.sim.timeline


def test_a_stick_present_at_start_stays_hidden_until_the_startup_check(sim: SimulatedUsb,
                                                                         harness: Harness) -> None:
    medium, token = make_medium()
    harness.policy = UsbPolicy(media=(medium,))
    name = sim.plug(storage_stick("AA0001", token))  # before the agent: authorised at boot
    sim.drain()  # udev ran, the agent was not there
    disk = sim.disk_of(name)
    assert disk is not None and not sim.exposed(disk)
    seen = _Timeline(harness)
    harness.agent.start()
    harness.pump()
    assert seen.index(("exposed", disk)) > seen.index(("token_check:allow", name))
    assert sim.exposed(f"{disk}1")


def test_a_read_only_medium_is_read_only_before_it_is_exposed(harness: Harness) -> None:
    medium, token = make_medium(read_only=True)
    harness.policy = UsbPolicy(media=(medium,))
    seen = _Timeline(harness)
    calls = harness.ro.calls

    class Noting(list[str]):
        def append(self, name: str) -> None:
            harness.sim.udev.note("read_only", name)
            super().append(name)

    harness.ro.calls = Noting(calls)
    harness.agent.start()
    name = harness.sim.plug(storage_stick("AA0001", token))
    harness.pump()
    disk = seen.disks[name]
    for node in (f"block/{disk}", f"block/{disk}/{disk}1"):
        assert (harness.sim.sysfs_root / node / "ro").read_text().strip() == "1"
    for node in (disk, f"{disk}1"):
        assert seen.index(("read_only", node)) < seen.index(("exposed", node))


def _agent(sim: SimulatedUsb, policy: UsbPolicy, events: list[Any], **settings: Any) -> Agent:
    config = UsbAgentConfig(host=HOST, sysfs_root=sim.sysfs_root, dev_root=sim.dev_root,
                            **settings)
    agent = Agent(config, emit=lambda k, d: events.append(d), policy_provider=lambda: policy,
                  source=sim, read_only=SimulatedReadOnly(sim))
    agent.start()
    return agent


def _run(sim: SimulatedUsb, agent: Agent) -> None:
    while batch := sim.drain():
        for event in batch:
            agent.handle(event)


def test_a_disk_below_a_device_that_is_no_medium_is_never_shown(sim: SimulatedUsb) -> None:
    # descriptors announce a vendor-specific interface (allowed by the policy's default), but a
    # storage driver binds it and a disk appears
    sneaky = DeviceSpec(0x0BDA, 0x0129, ((0x08, 0x06, 0x50),), "RTS5129",
                        raw_descriptors=build_descriptors(0x0BDA, 0x0129, [(0xFF, 0xFF, 0xFF)]))
    events: list[Any] = []
    agent = _agent(sim, UsbPolicy(default="allow"), events)
    name = sim.plug(sneaky)
    _run(sim, agent)
    assert not sim.is_authorized(name)
    assert (events[-1].verdict, events[-1].rule) == ("block", "unexpected_disk")
    assert not [e for e in sim.timeline if e[0] == "exposed"]


def test_a_checked_disk_that_cannot_be_marked_is_refused_not_shown(sim: SimulatedUsb) -> None:
    medium, token = make_medium()
    events: list[Any] = []
    agent = _agent(sim, UsbPolicy(media=(medium,)), events)
    sim.verified_dir.rmdir()
    sim.verified_dir.write_text("not a directory")  # marks cannot be written any more
    name = sim.plug(storage_stick("AA0001", token))
    _run(sim, agent)
    assert not sim.is_authorized(name)
    assert (events[-1].verdict, events[-1].rule) == ("block", "expose_failed")
    assert agent.stats.token_verified == 1
    assert not [e for e in sim.timeline if e[0] == "exposed"]


def test_the_agent_notices_when_udev_did_not_hide_a_disk(tmp_path: Path) -> None:
    sim = SimulatedUsb(tmp_path / "bare", storage_rule=False)  # the rule is not installed
    medium, token = make_medium()
    events: list[Any] = []
    agent = _agent(sim, UsbPolicy(media=(medium,)), events)
    name = sim.plug(storage_stick("AA0001", token))
    _run(sim, agent)
    assert sim.is_authorized(name)  # the medium is fine; the host is not set up right
    assert agent.stats.unhidden_disks == 1
    assert events[-1].reason == ("medium token verified (udev did not hide this disk before "
                                 "its check: install 79-secroom-usb-storage.rules)")


def test_without_token_check_a_medium_is_shown_once_authorised(sim: SimulatedUsb) -> None:
    medium, _ = make_medium()
    events: list[Any] = []
    agent = _agent(sim, UsbPolicy(media=(medium,)), events, token_check=False)
    name = sim.plug(storage_stick("AA0001", None))
    _run(sim, agent)
    disk = sim.disk_of(name)
    assert disk is not None and sim.exposed(disk) and sim.exposed(f"{disk}1")
    assert [e.phase for e in events] == ["insert"]
    assert agent.stats.token_verified == 0


def test_marks_left_from_before_a_restart_are_cleared_at_start(sim: SimulatedUsb) -> None:
    sim.verified_dir.mkdir(parents=True)
    (sim.verified_dir / "sda.ok").touch()  # the agent died; udev missed the removal
    agent = _agent(sim, UsbPolicy(media=(make_medium()[0],)), [])
    assert list(sim.verified_dir.iterdir()) == []
    clone = sim.plug(storage_stick("AA0001", MediumToken("USB-0001", new_token())))
    _run(sim, agent)
    assert sim.disk_of(clone) is None and not sim.is_authorized(clone)
    assert not [e for e in sim.timeline if e[0] == "exposed"]  # sda was never shown
