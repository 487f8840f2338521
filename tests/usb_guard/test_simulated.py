"""The simulation must behave like the kernel where the agent can tell."""

from __future__ import annotations

from pathlib import Path

from usb_guard.simulated import SimulatedUsb, keyboard, storage_stick
from usb_guard.sysfs import Sysfs, usb_device_of


def test_interfaces_and_disk_exist_only_while_authorised(sim: SimulatedUsb) -> None:
    Sysfs(sim.sysfs_root).set_authorized_default(0)
    name = sim.plug(storage_stick("S1"))
    events = sim.drain()
    assert [(e.action, e.devtype) for e in events] == [("add", "usb_device")]
    assert not (sim.devices_dir / f"{name}:1.0").exists()
    assert (sim.devices_dir / name / "descriptors").stat().st_size > 18

    (sim.devices_dir / name / "authorized").write_text("1")
    added = sim.drain()
    assert [(e.subsystem, e.devtype) for e in added] == [
        ("usb", "usb_interface"), ("block", "disk"), ("block", "partition")]
    disk = sim.disk_of(name)
    assert disk is not None and (sim.dev_root / disk).exists()
    assert usb_device_of(added[1].sys_path or "") == name

    (sim.devices_dir / name / "authorized").write_text("0")
    removed = sim.drain()
    assert {e.action for e in removed} == {"remove"}
    assert not (sim.devices_dir / f"{name}:1.0").exists() and sim.disk_of(name) is None


def test_remove_event_has_no_properties_and_sysfs_is_gone(sim: SimulatedUsb) -> None:
    name = sim.plug(keyboard())
    sim.drain()
    sim.unplug(name)
    last = sim.drain()[-1]
    assert (last.action, last.properties, last.devtype) == ("remove", {}, None)
    assert not (sim.devices_dir / name).exists()


def test_sysfs_reader_on_the_simulated_tree(sim: SimulatedUsb) -> None:
    sysfs = Sysfs(sim.sysfs_root)
    a = sim.plug(keyboard())
    b = sim.plug(storage_stick(None), bus=2)
    assert sysfs.root_hubs() == ["usb1", "usb2"]
    assert sysfs.device_names() == sorted([a, b])
    dev = sysfs.read_device(b)
    assert (dev.vendor_id, dev.product_id, dev.serial) == ("0781", "5583", None)
    assert dev.interfaces == ("08:06:50",)
    assert sysfs.is_authorized(a)  # authorized_default starts at 1, as on a fresh boot


def test_storage_disk_waits_for_its_interface_authorisation(sim: SimulatedUsb) -> None:
    sysfs = Sysfs(sim.sysfs_root)
    sysfs.set_authorized_default(0)
    sysfs.set_interface_authorized_default(0)
    name = sim.plug(storage_stick("S2"))
    sim.drain()
    sysfs.set_authorized(name, True)
    assert [e.devtype for e in sim.drain()] == ["usb_interface"]
    [iface] = sysfs.interface_names(name)
    assert sysfs.interface_type(iface) == "08:06:50" and sim.disk_of(name) is None
    sysfs.set_interface_authorized(iface, True)
    assert [e.devtype for e in sim.drain()] == ["disk", "partition"]
    sysfs.set_interface_authorized(iface, False)
    assert [(e.action, e.devtype) for e in sim.drain()] == [
        ("remove", "partition"), ("remove", "disk")]
    assert sim.disk_of(name) is None and sysfs.is_authorized(name)


def test_udev_storage_rule_hides_a_usb_disk_until_it_is_marked(sim: SimulatedUsb) -> None:
    name = sim.plug(storage_stick("S3"))
    sim.drain()
    disk = sim.disk_of(name)
    assert disk is not None and (sim.dev_root / disk).exists()  # the kernel made the node
    assert not sim.exposed(disk) and not sim.exposed(f"{disk}1")  # udev kept it hidden
    sim.verified_dir.mkdir(parents=True)
    (sim.verified_dir / f"{disk}.ok").touch()
    assert sim.drain() == []  # a mark alone changes nothing until udev runs the rule again
    for node in (f"block/{disk}", f"block/{disk}/{disk}1"):
        (sim.sysfs_root / node / "uevent").write_text("change")
    assert [(e.action, e.sys_name) for e in sim.drain()] == [
        ("change", disk), ("change", f"{disk}1")]
    assert sim.exposed(disk) and sim.exposed(f"{disk}1")
    assert sim.timeline == [("exposed", disk), ("exposed", f"{disk}1")]
    sim.unplug(name)
    sim.drain()
    assert not sim.exposed(disk) and not (sim.verified_dir / f"{disk}.ok").exists()  # rule's rm


def test_without_the_storage_rule_a_disk_is_exposed_as_soon_as_it_appears(
    tmp_path: Path,
) -> None:
    sim = SimulatedUsb(tmp_path / "bare", storage_rule=False)
    name = sim.plug(storage_stick("S4", sectors=8192))
    sim.drain()
    disk = sim.disk_of(name)
    assert disk is not None and sim.exposed(disk) and sim.exposed(f"{disk}1")
    assert (sim.sysfs_root / "block" / disk / "size").read_text().strip() == "8192"
    assert (sim.dev_root / disk).stat().st_size == 8192 * 512
