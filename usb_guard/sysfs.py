"""The USB devices as the kernel shows them in sysfs, under a configurable root.

Tests and the demo point ``root`` at a simulated tree (``usb_guard.simulated``) that has the
same layout: ``bus/usb/devices/<name>`` symlinks to ``devices/.../<name>`` directories holding
``idVendor``, ``idProduct``, ``serial`` (absent on serial-less devices), ``descriptors`` and
``authorized``; root hubs ``usbN`` hold ``authorized_default``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from usb_guard.descriptors import Descriptors, parse_descriptors
from usb_guard.errors import DescriptorError, SysfsError

DEVICE_NAME = re.compile(r"\d{1,3}-\d{1,3}(?:\.\d{1,3}){0,6}")
ROOT_HUB_NAME = re.compile(r"usb\d{1,3}")
INTERFACE_NAME = re.compile(r"\d{1,3}-\d{1,3}(?:\.\d{1,3}){0,6}:\d{1,3}\.\d{1,3}")
BLOCK_NAME = re.compile(r"[a-z][a-z0-9]{0,31}")
_HEX4 = re.compile(r"[0-9a-f]{4}")
MAX_ATTR_BYTES = 4096


@dataclass(frozen=True)
class UsbDevice:
    """A USB device read from sysfs; ``descriptor_error`` is set if its descriptors are bad."""

    name: str
    vendor_id: str | None
    product_id: str | None
    serial: str | None
    descriptors: Descriptors | None
    descriptor_error: str | None = None

    @property
    def interfaces(self) -> tuple[str, ...]:
        if self.descriptors is None:
            return ()
        return tuple(str(i) for i in self.descriptors.interfaces)

    @property
    def descriptors_sha256(self) -> str | None:
        return None if self.descriptors is None else self.descriptors.sha256


def valid_device_name(name: object) -> bool:
    return isinstance(name, str) and DEVICE_NAME.fullmatch(name) is not None


def usb_device_of(sys_path: str) -> str | None:
    """The innermost USB device (e.g. ``1-2.3``) a sysfs path lies under, if any."""
    found = None
    for part in sys_path.split("/"):
        if DEVICE_NAME.fullmatch(part):
            found = part
    return found


class Sysfs:
    def __init__(self, root: Path = Path("/sys")) -> None:
        self.root = Path(root)
        self.devices_dir = self.root / "bus" / "usb" / "devices"
        self._devices = str(self.devices_dir)  # plain strings: pathlib costs on the hot path

    def _device_dir(self, name: str) -> str:
        if not (valid_device_name(name) or ROOT_HUB_NAME.fullmatch(name)):
            raise SysfsError(f"not a USB device name: {name[:40]!r}")
        return f"{self._devices}/{name}"

    def _read(self, path: str, limit: int = MAX_ATTR_BYTES) -> bytes | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SysfsError(f"cannot open {path}: {exc.strerror}") from exc
        try:
            return os.read(fd, limit)
        except OSError as exc:
            raise SysfsError(f"cannot read {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def _write(self, path: str, value: str) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)  # as `echo 1 >` does
        except OSError as exc:
            raise SysfsError(f"cannot open {path}: {exc.strerror}") from exc
        try:
            os.write(fd, value.encode())
        except OSError as exc:
            raise SysfsError(f"cannot write {value!r} to {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def device_names(self) -> list[str]:
        """Present USB devices (not root hubs, not interfaces), parents before children."""
        try:
            names = [n for n in os.listdir(self.devices_dir) if valid_device_name(n)]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise SysfsError(f"cannot list {self.devices_dir}: {exc.strerror}") from exc
        return sorted(names, key=lambda n: (n.count(".") + n.count("-"), n))

    def root_hubs(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.devices_dir) if ROOT_HUB_NAME.fullmatch(n))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise SysfsError(f"cannot list {self.devices_dir}: {exc.strerror}") from exc

    def set_authorized_default(self, value: int) -> list[str]:
        """Write ``authorized_default`` on every bus (0: new devices start unauthorised)."""
        hubs = self.root_hubs()
        for hub in hubs:
            self._write(f"{self._device_dir(hub)}/authorized_default", str(value))
        return hubs

    def set_interface_authorized_default(self, value: int) -> list[str]:
        """Write ``interface_authorized_default`` on every bus (0: interfaces of an authorised
        device wait for their own authorisation)."""
        hubs = self.root_hubs()
        for hub in hubs:
            path = f"{self._device_dir(hub)}/interface_authorized_default"
            if not os.path.exists(path):
                raise SysfsError(f"{path} does not exist: this kernel cannot authorise "
                                 "interfaces one by one; set interface_control = false")
            self._write(path, str(value))
        return hubs

    def interface_names(self, device: str) -> list[str]:
        """The interfaces of a device present in sysfs (only once it is authorised)."""
        prefix = f"{device}:"
        try:
            return sorted(n for n in os.listdir(self.devices_dir)
                          if n.startswith(prefix) and INTERFACE_NAME.fullmatch(n))
        except OSError as exc:
            raise SysfsError(f"cannot list {self.devices_dir}: {exc.strerror}") from exc

    def interface_type(self, interface: str) -> str:
        """cc:ss:pp of an interface, from bInterfaceClass/SubClass/Protocol."""
        if not INTERFACE_NAME.fullmatch(interface):
            raise SysfsError(f"not a USB interface name: {interface[:40]!r}")
        base = f"{self._devices}/{interface}"
        parts = []
        for attr in ("bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol"):
            raw = self._read(f"{base}/{attr}", 8)
            text = (raw or b"").decode("ascii", "replace").strip().lower()
            if not re.fullmatch(r"[0-9a-f]{2}", text):
                raise SysfsError(f"interface {interface} has no valid {attr}")
            parts.append(text)
        return ":".join(parts)

    def set_interface_authorized(self, interface: str, value: bool) -> None:
        if not INTERFACE_NAME.fullmatch(interface):
            raise SysfsError(f"not a USB interface name: {interface[:40]!r}")
        self._write(f"{self._devices}/{interface}/authorized", "1" if value else "0")

    def is_authorized(self, name: str) -> bool:
        raw = self._read(f"{self._device_dir(name)}/authorized", 16)
        if raw is None:
            raise SysfsError(f"device {name} is gone")
        return raw.strip() == b"1"

    def set_authorized(self, name: str, value: bool) -> None:
        self._write(f"{self._device_dir(name)}/authorized", "1" if value else "0")

    def disk_sectors(self, disk: str) -> int:
        """Capacity of a block device in 512-byte sectors (``/sys/block/<disk>/size``)."""
        if not BLOCK_NAME.fullmatch(disk):
            raise SysfsError(f"not a block device name: {disk[:40]!r}")
        raw = self._read(f"{self.root}/block/{disk}/size", 32)
        text = (raw or b"").decode("ascii", "replace").strip()
        if not text.isdigit():
            raise SysfsError(f"block device {disk} has no readable size")
        return int(text)

    def partitions(self, disk: str) -> list[str]:
        """The partitions of a block device (``/sys/block/<disk>/<disk>N``)."""
        if not BLOCK_NAME.fullmatch(disk):
            raise SysfsError(f"not a block device name: {disk[:40]!r}")
        base = f"{self.root}/block/{disk}"
        try:
            entries = os.listdir(base)
        except OSError as exc:
            raise SysfsError(f"cannot list {base}: {exc.strerror}") from exc
        return sorted(e for e in entries if e.startswith(disk) and BLOCK_NAME.fullmatch(e)
                      and os.path.exists(f"{base}/{e}/partition"))

    def trigger_change(self, disk: str) -> None:
        """Have udev process a disk and its partitions again (``udevadm trigger``)."""
        for node in (disk, *(f"{disk}/{p}" for p in self.partitions(disk))):
            self._write(f"{self.root}/block/{node}/uevent", "change")

    def read_device(self, name: str) -> UsbDevice:
        """Read a device; SysfsError if it is gone, descriptor problems go into the result."""
        base = self._device_dir(name)
        vid = self._read(f"{base}/idVendor", 16)
        pid = self._read(f"{base}/idProduct", 16)
        if vid is None or pid is None:
            raise SysfsError(f"device {name} is gone or has no idVendor/idProduct")
        serial_raw = self._read(f"{base}/serial", 512)
        serial = None
        if serial_raw is not None:
            serial = serial_raw.decode("utf-8", "replace").rstrip("\n")[:255]
        raw = self._read(f"{base}/descriptors", 64 * 1024 + 1)
        descriptors = None
        error = None
        try:
            if raw is None:
                raise DescriptorError("no descriptors file")
            descriptors = parse_descriptors(raw)
        except DescriptorError as exc:
            error = str(exc)
        return UsbDevice(name, _hex4(vid), _hex4(pid), serial, descriptors, error)


def _hex4(raw: bytes) -> str | None:
    text = raw.decode("ascii", "replace").strip().lower()
    return text if _HEX4.fullmatch(text) else None
