"""udev events: the ``UEvent`` we use, the source protocol, and the pyudev adapter.

This is the only module that imports pyudev; its exceptions become ``UdevError``. Property
values come from the device and udev rules and are treated as untrusted text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from usb_guard.errors import UdevError


@dataclass(frozen=True)
class UEvent:
    action: str
    subsystem: str
    devtype: str | None
    sys_name: str | None
    sys_path: str | None
    properties: Mapping[str, str] = field(default_factory=dict)


class UdevSource(Protocol):
    def receive(self, timeout: float) -> UEvent | None:
        """The next event, or None after ``timeout`` seconds without one."""

    def close(self) -> None: ...


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class PyudevSource:
    """Netlink udev monitor for the usb and block subsystems."""

    def __init__(self) -> None:
        try:
            import pyudev

            self._pyudev = pyudev
            monitor = pyudev.Monitor.from_netlink(pyudev.Context())
            monitor.filter_by("usb")
            monitor.filter_by("block")
            monitor.start()
        except (ImportError, OSError, ValueError) as exc:
            raise UdevError(f"cannot open the udev monitor: {exc}") from exc
        self._monitor: Any | None = monitor

    def receive(self, timeout: float) -> UEvent | None:
        if self._monitor is None:
            raise UdevError("the udev monitor is closed")
        try:
            device = self._monitor.poll(timeout=timeout)
        except (OSError, ValueError) as exc:
            raise UdevError(f"udev monitor failed: {exc}") from exc
        if device is None:
            return None
        return self._translate(device)

    def _translate(self, device: Any) -> UEvent:
        def get(attr: str) -> str | None:
            try:
                return _text(getattr(device, attr))
            except (AttributeError, LookupError, OSError, ValueError,
                    self._pyudev.DeviceNotFoundError):
                return None

        props: dict[str, str] = {}
        try:
            for key in device.properties:
                value = _text(device.properties.get(key))
                if value is not None:
                    props[str(key)] = value
        except (LookupError, OSError, ValueError, UnicodeError):
            props = {}
        return UEvent(
            action=get("action") or "",
            subsystem=get("subsystem") or "",
            devtype=get("device_type"),
            sys_name=get("sys_name"),
            sys_path=get("sys_path"),
            properties=props,
        )

    def close(self) -> None:
        """Release the monitor; pyudev closes the netlink socket when it is unreferenced."""
        self._monitor = None
