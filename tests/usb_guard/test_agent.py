from __future__ import annotations

import threading
from typing import Any

import pytest

from usb_guard.agent import Agent
from usb_guard.config import UsbAgentConfig
from usb_guard.events import KIND_INSERTED, KIND_REMOVED
from usb_guard.medium_token import MediumToken, new_token
from usb_guard.policy import UsbPolicy
from usb_guard.simulated import DeviceSpec, SimulatedReadOnly, SimulatedUsb, keyboard, storage_stick

from .conftest import HOST, Harness, make_medium


def _start(h: Harness) -> None:
    h.agent.start()
    h.pump()


def test_start_sets_new_devices_unauthorised_on_every_bus(harness: Harness) -> None:
    _start(harness)
    for bus in ("usb1", "usb2"):
        path = harness.sim.devices_dir / bus / "authorized_default"
        assert path.read_text().strip() == "0"


def test_registered_stick_is_allowed_after_its_token_is_verified(harness: Harness) -> None:
    medium, token = make_medium()
    harness.policy = UsbPolicy(media=(medium,))
    _start(harness)
    name = harness.sim.plug(storage_stick("AA0001", token))
    harness.pump()
    assert harness.sim.is_authorized(name)
    assert harness.sim.disk_of(name) is not None
    phases = [(e.phase, e.verdict) for e in harness.inserted(name)]
    assert phases == [("insert", "allow"), ("token_check", "allow")]
    final = harness.final(name)
    assert final.control_number == "USB-0001" and final.host == HOST
    assert final.rule == "medium:USB-0001" and final.interfaces == ("08:06:50",)
    assert harness.agent.stats.token_verified == 1


def test_unknown_stick_is_blocked_and_never_gets_a_disk(harness: Harness) -> None:
    medium, _ = make_medium()
    harness.policy = UsbPolicy(media=(medium,))
    _start(harness)
    name = harness.sim.plug(storage_stick("ZZ9999"))
    harness.pump()
    assert not harness.sim.is_authorized(name)
    assert harness.sim.disk_of(name) is None
    event = harness.final(name)
    assert (event.verdict, event.rule, event.control_number) == ("block", "unregistered", None)


def test_clone_with_same_serial_but_wrong_token_is_removed(harness: Harness) -> None:
    medium, token = make_medium()
    harness.policy = UsbPolicy(media=(medium,))
    _start(harness)
    original = harness.sim.plug(storage_stick("AA0001", token))
    clone = harness.sim.plug(storage_stick("AA0001", MediumToken("USB-0001", new_token())))
    blank = harness.sim.plug(storage_stick("AA0001", None))
    harness.pump()
    assert harness.sim.is_authorized(original)
    for name in (clone, blank):
        assert not harness.sim.is_authorized(name)
        assert harness.sim.disk_of(name) is None  # de-authorised: the disk went away again
        event = harness.final(name)
        assert event.verdict == "removed_token_mismatch"
        assert event.control_number == "USB-0001"  # the medium it pretended to be
    assert "no secroom token block" in harness.final(blank).reason
    assert harness.agent.stats.token_mismatches == 2


def test_keyboard_allowed_while_storage_is_blocked_even_without_policy(harness: Harness) -> None:
    harness.policy = None
    _start(harness)
    kbd = harness.sim.plug(keyboard())
    stick = harness.sim.plug(storage_stick("AA0001"))
    harness.pump()
    assert harness.sim.is_authorized(kbd)
    assert not harness.sim.is_authorized(stick)
    assert harness.final(kbd).rule == "hid-keyboard+hid-generic"
    assert harness.final(stick).rule == "no_policy"


def test_other_classes_follow_the_policy_default(harness: Harness) -> None:
    _start(harness)
    webcam = DeviceSpec(0x046D, 0x0825, ((0x0E, 0x01, 0x00), (0x0E, 0x02, 0x00)))
    blocked = harness.sim.plug(webcam)
    harness.pump()
    assert not harness.sim.is_authorized(blocked)
    assert harness.final(blocked).rule == "default"
    harness.policy = UsbPolicy(default="allow")
    allowed = harness.sim.plug(webcam)
    harness.pump()
    assert harness.sim.is_authorized(allowed)


def test_ledger_state_change_reaches_the_agent_through_the_policy(harness: Harness) -> None:
    medium, token = make_medium()
    harness.policy = UsbPolicy(media=(medium,))
    _start(harness)
    name = harness.sim.plug(storage_stick("AA0001", token))
    harness.pump()
    assert harness.sim.is_authorized(name)

    harness.policy = UsbPolicy(media=(medium.model_copy(update={"state": "lost"}),))
    assert harness.agent.check_policy()
    harness.pump()
    assert not harness.sim.is_authorized(name)
    event = harness.final(name)
    assert (event.phase, event.verdict, event.rule) == ("policy_change", "block", "state:lost")

    other = harness.sim.plug(storage_stick("AA0001", token))
    harness.pump()
    assert not harness.sim.is_authorized(other)
    assert harness.final(other).rule == "state:lost"

    harness.policy = UsbPolicy(media=(medium,))  # found and back in storage
    assert harness.agent.check_policy()
    harness.pump()
    assert harness.sim.is_authorized(name)
    assert harness.final(name).phase == "token_check"
    assert harness.final(name).verdict == "allow"
    assert not harness.agent.check_policy()  # same policy again: nothing to redo


def test_medium_not_allowed_on_this_host_is_blocked(harness: Harness) -> None:
    medium, token = make_medium(hosts=("room-pc2",))
    harness.policy = UsbPolicy(media=(medium,))
    _start(harness)
    name = harness.sim.plug(storage_stick("AA0001", token))
    harness.pump()
    assert not harness.sim.is_authorized(name)
    assert harness.final(name).rule == "host_not_allowed"


def test_stick_with_hidden_keyboard_is_blocked(harness: Harness) -> None:
    medium, token = make_medium()
    harness.policy = UsbPolicy(media=(medium,))
    _start(harness)
    badusb = DeviceSpec(0x0781, 0x5583, ((0x08, 0x06, 0x50), (0x03, 0x01, 0x01)), "AA0001",
                        token=token)
    name = harness.sim.plug(badusb)
    harness.pump()
    assert not harness.sim.is_authorized(name)
    assert harness.final(name).rule == "interfaces_mismatch"


def test_read_only_medium_is_switched_to_read_only(harness: Harness) -> None:
    medium, token = make_medium(read_only=True)
    harness.policy = UsbPolicy(media=(medium,))
    _start(harness)
    name = harness.sim.plug(storage_stick("AA0001", token))
    harness.pump()
    disk = harness.sim.disk_of(name)
    assert disk is not None and harness.sim.is_authorized(name)
    assert harness.sim.disk_read_only(disk)
    assert harness.ro.calls == [disk, f"{disk}1"]
    assert harness.final(name).verdict == "readonly"


def test_read_only_failure_fails_closed(sim: SimulatedUsb) -> None:
    medium, token = make_medium(read_only=True)
    events: list[Any] = []
    agent = Agent(UsbAgentConfig(host=HOST, sysfs_root=sim.sysfs_root, dev_root=sim.dev_root),
                  emit=lambda k, d: events.append(d), source=sim,
                  policy_provider=lambda: UsbPolicy(media=(medium,)),
                  read_only=SimulatedReadOnly(sim, fail=True))
    agent.start()
    name = sim.plug(storage_stick("AA0001", token))
    while batch := sim.drain():
        for ev in batch:
            agent.handle(ev)
    assert not sim.is_authorized(name)
    assert events[-1].rule == "readonly_failed" and events[-1].verdict == "block"


def test_serial_less_media_are_told_apart_by_their_token(harness: Harness) -> None:
    first, token1 = make_medium("USB-0001", serial=None)
    second, token2 = make_medium("USB-0002", serial=None)
    harness.policy = UsbPolicy(media=(first, second))
    _start(harness)
    name = harness.sim.plug(storage_stick(None, token2))
    harness.pump()
    assert harness.inserted(name)[0].control_number is None  # ambiguous until the token
    assert harness.final(name).control_number == "USB-0002"
    assert harness.sim.is_authorized(name)


def test_remove_event_without_properties_reports_the_medium(harness: Harness) -> None:
    medium, token = make_medium()
    harness.policy = UsbPolicy(media=(medium,))
    _start(harness)
    name = harness.sim.plug(storage_stick("AA0001", token))
    harness.pump()
    harness.sim.unplug(name)
    harness.pump()
    removed = [d for k, d in harness.events if k == KIND_REMOVED]
    assert len(removed) == 1
    assert (removed[0].device, removed[0].control_number) == (name, "USB-0001")
    assert harness.agent.stats.errors == 0


def test_startup_scan_decides_on_devices_already_present(harness: Harness) -> None:
    medium, token = make_medium()
    harness.policy = UsbPolicy(media=(medium,))
    # authorized_default is still 1: these come up authorised before the agent starts
    kbd = harness.sim.plug(keyboard())
    good = harness.sim.plug(storage_stick("AA0001", token))
    bad = harness.sim.plug(storage_stick("XX"))
    harness.sim.drain()  # the agent was not running: these events are lost
    assert harness.sim.is_authorized(bad)
    _start(harness)
    assert harness.sim.is_authorized(kbd)
    assert harness.sim.is_authorized(good)
    assert not harness.sim.is_authorized(bad)
    assert [e.phase for e in harness.inserted(good)] == ["startup_scan", "token_check"]
    assert harness.final(good).control_number == "USB-0001"
    assert harness.final(bad).phase == "startup_scan"


def test_run_loop_handles_events_until_stopped(sim: SimulatedUsb) -> None:
    medium, token = make_medium()
    policy = UsbPolicy(media=(medium,))
    verified = threading.Event()
    events: list[Any] = []

    def emit(kind: str, data: Any) -> None:
        events.append(data)
        if kind == KIND_INSERTED and data.phase == "token_check":
            verified.set()

    agent = Agent(UsbAgentConfig(host=HOST, sysfs_root=sim.sysfs_root, dev_root=sim.dev_root,
                                 poll_seconds=0.05),
                  emit=emit, policy_provider=lambda: policy, source=sim,
                  read_only=SimulatedReadOnly(sim))
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,))
    thread.start()
    try:
        name = sim.plug(storage_stick("AA0001", token))
        assert verified.wait(10)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert sim.is_authorized(name)
    assert events[-1].verdict == "allow" and events[-1].control_number == "USB-0001"


def test_policy_change_seen_first_by_an_insertion_still_re_decides_present_devices(
    harness: Harness,
) -> None:
    medium, token = make_medium()
    harness.policy = UsbPolicy(media=(medium,))
    _start(harness)
    stick = harness.sim.plug(storage_stick("AA0001", token))
    harness.pump()
    harness.policy = UsbPolicy(media=(medium.model_copy(update={"state": "lost"}),))
    kbd = harness.sim.plug(keyboard())  # handled under the new policy before check_policy runs
    harness.pump()
    assert harness.sim.is_authorized(kbd) and harness.sim.is_authorized(stick)
    assert harness.agent.check_policy()
    assert not harness.sim.is_authorized(stick)
    assert [e.phase for e in harness.inserted(kbd)] == ["insert"]  # unchanged: no new event


def test_root_hub_and_interface_removals_are_not_bad_events(harness: Harness) -> None:
    from usb_guard.udev import UEvent

    _start(harness)
    for name in ("usb1", "1-1:1.0"):
        harness.agent.handle(UEvent("remove", "usb", None, name, None, {}))
    assert harness.agent.stats.bad_events == 0
    harness.agent.handle(UEvent("remove", "usb", None, "../../etc", None, {}))
    assert harness.agent.stats.bad_events == 1


def test_removed_clone_stays_blocked_across_policy_changes(harness: Harness) -> None:
    medium, _ = make_medium()
    harness.policy = UsbPolicy(media=(medium,))
    _start(harness)
    clone = harness.sim.plug(storage_stick("AA0001", MediumToken("USB-0001", new_token())))
    harness.pump()
    assert harness.final(clone).verdict == "removed_token_mismatch"
    count = len(harness.inserted(clone))
    other, _ = make_medium("USB-0002", serial="BB")
    harness.policy = UsbPolicy(media=(medium, other))
    assert harness.agent.check_policy()
    harness.pump()
    assert not harness.sim.is_authorized(clone)
    assert len(harness.inserted(clone)) == count  # not re-authorised, not re-checked


def test_read_only_flag_does_not_leak_to_a_later_disk_with_the_same_name(
    harness: Harness,
) -> None:
    ro_medium, ro_token = make_medium(read_only=True)
    rw_medium, rw_token = make_medium("USB-0002", serial="BB")
    harness.policy = UsbPolicy(media=(ro_medium, rw_medium))
    _start(harness)
    first = harness.sim.plug(storage_stick("AA0001", ro_token))
    harness.pump()
    ro_disk = harness.sim.disk_of(first)
    harness.sim.unplug(first)
    harness.pump()
    second = harness.sim.plug(storage_stick("BB", rw_token))
    harness.pump()
    disk = harness.sim.disk_of(second)
    assert disk is not None and ro_disk is not None
    assert not harness.sim.disk_read_only(disk)
    assert harness.ro.calls == [ro_disk, f"{ro_disk}1"]


COMBO = DeviceSpec(0x04F2, 0x1234, ((0x03, 0x01, 0x01), (0x08, 0x06, 0x50)), None,
                   "Keyboard with card reader")


def test_start_makes_interfaces_wait_for_their_own_authorisation(harness: Harness) -> None:
    _start(harness)
    for bus in ("usb1", "usb2"):
        path = harness.sim.devices_dir / bus / "interface_authorized_default"
        assert path.read_text().strip() == "0"


def test_per_interface_control_keeps_the_keyboard_and_refuses_its_storage(
    harness: Harness,
) -> None:
    _start(harness)
    name = harness.sim.plug(COMBO)
    harness.pump()
    assert harness.sim.is_authorized(name)
    iface = harness.sim.devices_dir
    assert (iface / f"{name}:1.0" / "authorized").read_text().strip() == "1"
    assert (iface / f"{name}:1.1" / "authorized").read_text().strip() == "0"
    assert harness.sim.disk_of(name) is None
    event = harness.final(name)
    assert (event.verdict, event.rule) == ("allow", "hid-keyboard")
    assert event.refused_interfaces == ("08:06:50",)
    assert event.reason.startswith("unregistered:")


def test_without_interface_control_the_whole_device_is_blocked(sim: SimulatedUsb) -> None:
    events: list[Any] = []
    agent = Agent(UsbAgentConfig(host=HOST, sysfs_root=sim.sysfs_root, dev_root=sim.dev_root,
                                 interface_control=False),
                  emit=lambda k, d: events.append(d), policy_provider=UsbPolicy, source=sim)
    agent.start()
    assert (sim.devices_dir / "usb1" / "interface_authorized_default").read_text() == "1\n"
    name = sim.plug(COMBO)
    for event in sim.drain():
        agent.handle(event)
    assert not sim.is_authorized(name)
    assert (events[-1].verdict, events[-1].rule) == ("block", "unregistered")


def test_startup_scan_refuses_interfaces_of_devices_already_present(harness: Harness) -> None:
    name = harness.sim.plug(COMBO)  # before the agent: everything bound, the disk is there
    harness.sim.drain()
    assert harness.sim.disk_of(name) is not None
    _start(harness)
    assert harness.sim.is_authorized(name)
    assert harness.sim.disk_of(name) is None
    assert (harness.sim.devices_dir / f"{name}:1.0" / "authorized").read_text().strip() == "1"


def test_kernel_without_interface_authorisation_is_a_clear_start_error(
    harness: Harness,
) -> None:
    from usb_guard.errors import SysfsError

    (harness.sim.devices_dir / "usb1" / "interface_authorized_default").unlink()
    with pytest.raises(SysfsError, match="interface_control = false"):
        harness.agent.start()
