"""A simulated USB stack for tests and the demo: sysfs tree, /dev nodes and a udev source.

``SimulatedUsb`` behaves like the kernel where the agent can tell: root hubs carry
``authorized_default`` and ``interface_authorized_default``; a plugged device starts with
``authorized`` copied from the first; its interfaces appear only once ``authorized`` is 1 (each
with its own ``authorized``, copied from the second) and vanish when it goes back to 0; the SCSI
disk of a storage interface, with its /dev node, exists only while that interface is authorised;
``remove`` events carry no properties and the device's sysfs directory is already gone. It is
also a ``UdevSource``: ``receive`` first notices writes to ``authorized`` and to the block
devices' ``uevent`` files (as the kernel would react to them) and queues the resulting events;
each block event then goes through udev's storage rule (``simulated_udev.UdevModel``: a USB disk
stays hidden from user space until the agent marks it verified) before it is handed out.
A stick's disk has the capacity of its ``DeviceSpec`` (``sectors``) and holds its ``image``
(a copy of another stick's, say) and its token block.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from usb_guard.descriptors import build_descriptors
from usb_guard.errors import ReadOnlyError
from usb_guard.medium_token import (
    DEFAULT_TOKEN_OFFSET,
    BlockDevice,
    DeviceBinding,
    MediumToken,
    encode_block,
)
from usb_guard.simulated_udev import VERIFIED_SUBDIR, UdevModel, uevent_text, written_action
from usb_guard.udev import UEvent

_CONTROLLER = "devices/pci0000:00/0000:00:14.0"
DEFAULT_SECTORS = 4096  # 2 MiB: room for the reserved area and a small first partition


@dataclass(frozen=True)
class DeviceSpec:
    vendor_id: int
    product_id: int
    interfaces: tuple[tuple[int, int, int], ...]
    serial: str | None = None
    product: str = "Simulated device"
    raw_descriptors: bytes | None = None  # overrides the built descriptors (malformed tests)
    token: MediumToken | None = None  # written into the reserved area, bound to this stick
    token_block: bytes | None = None  # raw bytes instead (damaged token tests)
    first_partition_sector: int = 2048  # 1 MiB, the usual alignment
    sectors: int = DEFAULT_SECTORS  # capacity in 512-byte sectors (/sys/block/<disk>/size)
    image: bytes | None = None  # the disk's content before the token (a copy of another stick)

    @property
    def is_storage(self) -> bool:
        return any(i[0] == 0x08 for i in self.interfaces)

    def binding(self) -> DeviceBinding:
        """What the agent will read about this stick (a token registered for it is bound to)."""
        return DeviceBinding(f"{self.vendor_id:04x}", f"{self.product_id:04x}", self.serial,
                             self.sectors)

    def descriptors(self) -> bytes:
        if self.raw_descriptors is not None:
            return self.raw_descriptors
        return build_descriptors(self.vendor_id, self.product_id, list(self.interfaces))


def storage_stick(serial: str | None, token: MediumToken | None = None, *,
                  vendor_id: int = 0x0781, product_id: int = 0x5583,
                  sectors: int = DEFAULT_SECTORS) -> DeviceSpec:
    return DeviceSpec(vendor_id, product_id, ((0x08, 0x06, 0x50),), serial, "USB stick",
                      token=token, sectors=sectors)


def keyboard() -> DeviceSpec:
    return DeviceSpec(0x046D, 0xC31C, ((0x03, 0x01, 0x01), (0x03, 0x00, 0x00)), None,
                      "USB keyboard")


@dataclass
class _Plugged:
    spec: DeviceSpec
    path: Path
    authorized: bool
    interfaces: list[str] = field(default_factory=list)
    bound: dict[str, bool] = field(default_factory=dict)  # interface -> driver bound
    disk: str | None = None


class SimulatedUsb:
    def __init__(self, root: Path, buses: int = 2, token_offset: int = DEFAULT_TOKEN_OFFSET,
                 storage_rule: bool = True):
        self.root = Path(root)
        self.sysfs_root = self.root / "sys"
        self.dev_root = self.root / "dev"
        self.verified_dir = self.root / VERIFIED_SUBDIR
        self.udev = UdevModel(self.verified_dir, storage_rule)
        self.token_offset = token_offset
        self._uevents: dict[Path, str] = {}  # block uevent files -> what they read back
        self._events: queue.Queue[UEvent] = queue.Queue()
        self._lock = threading.RLock()
        self._plugged: dict[str, _Plugged] = {}
        self._disks = 0
        self.devices_dir = self.sysfs_root / "bus/usb/devices"
        for d in (self.devices_dir, self.sysfs_root / "block", self.dev_root):
            d.mkdir(parents=True, exist_ok=True)
        for bus in range(1, buses + 1):
            hub = self.sysfs_root / _CONTROLLER / f"usb{bus}"
            hub.mkdir(parents=True)
            _write_attrs(hub, {"authorized_default": "1", "interface_authorized_default": "1",
                               "authorized": "1", "idVendor": "1d6b", "idProduct": "0002",
                               "bDeviceClass": "09"})
            (hub / "descriptors").write_bytes(build_descriptors(0x1D6B, 2, [(9, 0, 0)], 9))
            os.symlink(os.path.relpath(hub, self.devices_dir), self.devices_dir / f"usb{bus}")

    # -- driving the simulation -------------------------------------------------------------
    def plug(self, spec: DeviceSpec, bus: int = 1) -> str:
        """Plug a device into the lowest free port of ``bus``; returns its sysfs name (``1-3``)."""
        with self._lock:
            port = next((p for p in range(1, 128) if f"{bus}-{p}" not in self._plugged), None)
            if port is None:
                raise ValueError(f"no free port on bus {bus}")
            name = f"{bus}-{port}"
            hub = self.sysfs_root / _CONTROLLER / f"usb{bus}"
            path = hub / name
            path.mkdir()
            default = (hub / "authorized_default").read_text().strip()
            authorized = default == "1"
            attrs = {"idVendor": f"{spec.vendor_id:04x}", "idProduct": f"{spec.product_id:04x}",
                     "product": spec.product, "authorized": "1" if authorized else "0",
                     "bDeviceClass": "00"}
            if spec.serial is not None:
                attrs["serial"] = spec.serial
            _write_attrs(path, attrs)
            (path / "descriptors").write_bytes(spec.descriptors())
            os.symlink(os.path.relpath(path, self.devices_dir), self.devices_dir / name)
            plugged = _Plugged(spec, path, authorized)
            self._plugged[name] = plugged
            self._events.put(UEvent("add", "usb", "usb_device", name, self._sys(path),
                                    {"DEVTYPE": "usb_device", "ACTION": "add",
                                     "PRODUCT": f"{spec.vendor_id:x}/{spec.product_id:x}/100"}))
            if authorized:
                self._bind(name, plugged)
            return name

    def unplug(self, name: str) -> None:
        with self._lock:
            plugged = self._plugged.pop(name)
            if plugged.authorized:
                self._unbind(name, plugged)
            (self.devices_dir / name).unlink()
            shutil.rmtree(plugged.path)
            self._events.put(UEvent("remove", "usb", None, name, self._sys(plugged.path), {}))

    def inject(self, event: UEvent) -> None:
        """Queue an arbitrary (possibly hostile) event."""
        self._events.put(event)

    def is_authorized(self, name: str) -> bool:
        return (self.devices_dir / name / "authorized").read_text().strip() == "1"

    def disk_of(self, name: str) -> str | None:
        with self._lock:
            return self._plugged[name].disk

    def exposed(self, node: str) -> bool:
        """Whether udev lets user space (udisks, automount, systemd) see this block device."""
        with self._lock:
            return self.udev.exposed(node)

    @property
    def timeline(self) -> list[tuple[str, str]]:
        return self.udev.timeline

    def disk_read_only(self, disk: str) -> bool:
        return (self.sysfs_root / "block" / disk / "ro").read_text().strip() == "1"

    def drain(self) -> list[UEvent]:
        """Everything the kernel has to say now (for synchronous tests)."""
        events = []
        while (event := self.receive(0)) is not None:
            events.append(event)
        return events

    # -- UdevSource ---------------------------------------------------------------------------
    def receive(self, timeout: float) -> UEvent | None:
        self.sync()
        try:
            event = (self._events.get_nowait() if timeout <= 0
                     else self._events.get(timeout=timeout))
        except queue.Empty:
            return None
        with self._lock:
            return self.udev.process(event)  # udev runs its rules before passing an event on

    def close(self) -> None:
        return None

    def sync(self) -> None:
        """React to writes of ``authorized`` (devices and interfaces) since the last call, as
        the kernel would: bind or unbind, and add or remove the disk of a storage interface;
        and to actions written to a block device's ``uevent`` file (a synthetic event)."""
        with self._lock:
            for path, text in list(self._uevents.items()):
                action = written_action(path / "uevent", text)
                if action is not None:
                    devtype = "disk" if text.startswith("DEVTYPE=disk") else "partition"
                    self._events.put(UEvent(action, "block", devtype, path.name, self._sys(path),
                                            {"DEVTYPE": devtype, "DEVNAME": f"/dev/{path.name}"}))
            for name, plugged in self._plugged.items():
                now = (plugged.path / "authorized").read_text().strip() == "1"
                if now and not plugged.authorized:
                    plugged.authorized = True
                    self._bind(name, plugged)
                elif not now and plugged.authorized:
                    plugged.authorized = False
                    self._unbind(name, plugged)
                elif now:
                    self._sync_interfaces(plugged)

    def _sync_interfaces(self, plugged: _Plugged) -> None:
        for number, iname in enumerate(plugged.interfaces):
            ipath = plugged.path / iname
            now = (ipath / "authorized").read_text().strip() == "1"
            if now == plugged.bound[iname]:
                continue
            plugged.bound[iname] = now
            if plugged.spec.interfaces[number][0] != 0x08:
                continue
            if now and plugged.disk is None:
                self._add_disk(plugged, ipath)
            elif not now and plugged.disk is not None:
                self._remove_disk(plugged)

    # -- kernel side --------------------------------------------------------------------------
    def _sys(self, path: Path) -> str:
        return "/sys/" + str(path.relative_to(self.sysfs_root))

    def _bind(self, name: str, plugged: _Plugged) -> None:
        spec = plugged.spec
        hub = plugged.path.parent
        default = (hub / "interface_authorized_default").read_text().strip() == "1"
        for number, (cls, sub, proto) in enumerate(spec.interfaces):
            iname = f"{name}:1.{number}"
            ipath = plugged.path / iname
            ipath.mkdir()
            _write_attrs(ipath, {"bInterfaceClass": f"{cls:02x}",
                                 "bInterfaceSubClass": f"{sub:02x}",
                                 "bInterfaceProtocol": f"{proto:02x}",
                                 "authorized": "1" if default else "0"})
            os.symlink(os.path.relpath(ipath, self.devices_dir), self.devices_dir / iname)
            plugged.interfaces.append(iname)
            plugged.bound[iname] = default
            self._events.put(UEvent("add", "usb", "usb_interface", iname, self._sys(ipath),
                                    {"DEVTYPE": "usb_interface",
                                     "INTERFACE": f"{cls}/{sub}/{proto}"}))
            if cls == 0x08 and default and plugged.disk is None:
                self._add_disk(plugged, ipath)

    def _add_disk(self, plugged: _Plugged, ipath: Path) -> None:
        in_use = {p.disk for p in self._plugged.values()}
        disk = next(d for d in ("sd" + _letters(i) for i in range(10_000)) if d not in in_use)
        self._disks += 1  # SCSI host numbers grow; disk names are reused, as in the kernel
        n = self._disks
        dpath = ipath / f"host{n}" / f"target{n}:0:0" / f"{n}:0:0:0" / "block" / disk
        part = dpath / f"{disk}1"
        part.mkdir(parents=True)
        _write_attrs(dpath, {"ro": "0", "size": str(plugged.spec.sectors)})
        _write_attrs(part, {"ro": "0", "partition": "1",
                            "start": str(plugged.spec.first_partition_sector)})
        for path, devtype in ((dpath, "disk"), (part, "partition")):
            self._uevents[path] = uevent_text(path.name, devtype)
            (path / "uevent").write_text(self._uevents[path])
        os.symlink(os.path.relpath(dpath, self.sysfs_root / "block"),
                   self.sysfs_root / "block" / disk)
        with open(self.dev_root / disk, "wb") as image:
            size = plugged.spec.sectors * 512
            image.write((plugged.spec.image or b"")[:size])
            image.truncate(size)
            block = plugged.spec.token_block
            if block is None and plugged.spec.token is not None:
                block = encode_block(plugged.spec.token, plugged.spec.binding())
            if block is not None:
                image.seek(self.token_offset)
                image.write(block)
        (self.dev_root / f"{disk}1").touch()
        plugged.disk = disk
        self._events.put(UEvent("add", "block", "disk", disk, self._sys(dpath),
                                {"DEVTYPE": "disk", "DEVNAME": f"/dev/{disk}"}))
        self._events.put(UEvent("add", "block", "partition", f"{disk}1",
                                self._sys(dpath / f"{disk}1"),
                                {"DEVTYPE": "partition", "DEVNAME": f"/dev/{disk}1"}))

    def _remove_disk(self, plugged: _Plugged) -> None:
        if plugged.disk is not None:
            disk = plugged.disk
            link = self.sysfs_root / "block" / disk
            dpath = (link.parent / os.readlink(link)).resolve()
            self._events.put(UEvent("remove", "block", "partition", f"{disk}1",
                                    self._sys(dpath / f"{disk}1"), {"DEVTYPE": "partition"}))
            self._events.put(UEvent("remove", "block", "disk", disk, self._sys(dpath),
                                    {"DEVTYPE": "disk"}))
            link.unlink()
            for path in [p for p in self._uevents if p.name in (disk, f"{disk}1")]:
                del self._uevents[path]
            for node in (disk, f"{disk}1"):
                (self.dev_root / node).unlink()
            plugged.disk = None

    def _unbind(self, name: str, plugged: _Plugged) -> None:
        self._remove_disk(plugged)
        for iname in plugged.interfaces:
            (self.devices_dir / iname).unlink()
            shutil.rmtree(plugged.path / iname)
            self._events.put(UEvent("remove", "usb", "usb_interface", iname,
                                    self._sys(plugged.path / iname), {"DEVTYPE": "usb_interface"}))
        plugged.interfaces.clear()
        plugged.bound.clear()


class SimulatedReadOnly:
    """The ReadOnlyControl of the simulation: sets the ``ro`` attribute like BLKROSET would."""

    def __init__(self, usb: SimulatedUsb, fail: bool = False) -> None:
        self.usb = usb
        self.fail = fail
        self.calls: list[str] = []

    def set_read_only(self, disk: BlockDevice) -> None:
        self.calls.append(disk.name)
        if self.fail:
            raise ReadOnlyError(f"simulated BLKROSET failure on {disk.name}")
        ro = self.usb.sysfs_root / disk.sys_path.removeprefix("/sys/") / "ro"
        ro.write_text("1")


def _write_attrs(path: Path, attrs: dict[str, str]) -> None:
    for key, value in attrs.items():
        (path / key).write_text(value + "\n")


def _letters(n: int) -> str:
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(ord("a") + r) + out
    return out
