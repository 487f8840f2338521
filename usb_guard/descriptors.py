"""Parse the binary ``descriptors`` sysfs file: device descriptor, then each configuration.

The interfaces of an unauthorised device do not exist in sysfs, so the interface classes are
read from the raw descriptors the kernel fetched at enumeration. The data comes from the device
itself and may be hostile: every length is checked, and anything malformed raises
``DescriptorError`` (the device is then blocked), never anything else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from usb_guard.errors import DescriptorError

MAX_DESCRIPTORS_BYTES = 64 * 1024
MAX_INTERFACE_TYPES = 64  # Linux allows 32 interfaces per configuration; keeps events small
DEVICE_DESCRIPTOR = 1
CONFIG_DESCRIPTOR = 2
INTERFACE_DESCRIPTOR = 4
_DEVICE_LEN = 18
_CONFIG_LEN = 9
_INTERFACE_LEN = 9


@dataclass(frozen=True)
class Interface:
    cls: int
    subclass: int
    protocol: int

    def __str__(self) -> str:
        return f"{self.cls:02x}:{self.subclass:02x}:{self.protocol:02x}"


@dataclass(frozen=True)
class Descriptors:
    device_class: int
    vendor_id: int
    product_id: int
    interfaces: tuple[Interface, ...]
    sha256: str


def parse_descriptors(raw: bytes) -> Descriptors:
    if len(raw) > MAX_DESCRIPTORS_BYTES:
        raise DescriptorError(f"descriptors too long ({len(raw)} bytes)")
    if len(raw) < _DEVICE_LEN:
        raise DescriptorError(f"device descriptor truncated ({len(raw)} bytes)")
    if raw[0] != _DEVICE_LEN or raw[1] != DEVICE_DESCRIPTOR:
        raise DescriptorError(
            f"first descriptor is not a device descriptor (length {raw[0]}, type {raw[1]})"
        )
    device_class = raw[4]
    vendor_id = int.from_bytes(raw[8:10], "little")
    product_id = int.from_bytes(raw[10:12], "little")
    num_configs = raw[17]
    interfaces: list[Interface] = []
    pos = _DEVICE_LEN
    configs = 0
    while pos < len(raw):
        pos = _parse_configuration(raw, pos, interfaces)
        configs += 1
    if configs == 0:
        raise DescriptorError("no configuration descriptor")
    if num_configs and configs > num_configs:
        raise DescriptorError(f"{configs} configurations but bNumConfigurations={num_configs}")
    if not interfaces:
        raise DescriptorError("no interface descriptor")
    unique = tuple(dict.fromkeys(interfaces))
    if len(unique) > MAX_INTERFACE_TYPES:
        raise DescriptorError(f"{len(unique)} interface types (a real device has a few)")
    return Descriptors(
        device_class, vendor_id, product_id, unique, hashlib.sha256(raw).hexdigest()
    )


def _parse_configuration(raw: bytes, start: int, out: list[Interface]) -> int:
    if len(raw) - start < _CONFIG_LEN:
        raise DescriptorError(f"configuration descriptor truncated at byte {start}")
    length, dtype = raw[start], raw[start + 1]
    if dtype != CONFIG_DESCRIPTOR or length < _CONFIG_LEN:
        raise DescriptorError(
            f"expected a configuration descriptor at byte {start} (length {length}, type {dtype})"
        )
    total = int.from_bytes(raw[start + 2 : start + 4], "little")
    end = start + total
    if total < length or end > len(raw):
        raise DescriptorError(f"configuration at byte {start} has bad wTotalLength {total}")
    pos = start + length
    while pos < end:
        if end - pos < 2:
            raise DescriptorError(f"descriptor header truncated at byte {pos}")
        dlen, dtype = raw[pos], raw[pos + 1]
        if dlen < 2 or pos + dlen > end:
            raise DescriptorError(f"descriptor at byte {pos} has bad bLength {dlen}")
        if dtype == INTERFACE_DESCRIPTOR:
            if dlen < _INTERFACE_LEN:
                raise DescriptorError(f"interface descriptor at byte {pos} too short ({dlen})")
            out.append(Interface(raw[pos + 5], raw[pos + 6], raw[pos + 7]))
        elif dtype == CONFIG_DESCRIPTOR:
            raise DescriptorError(f"nested configuration descriptor at byte {pos}")
        pos += dlen
    return end


def build_descriptors(
    vendor_id: int,
    product_id: int,
    interfaces: list[tuple[int, int, int]],
    device_class: int = 0,
) -> bytes:
    """Valid descriptors for one configuration with the given interfaces (simulation, tests)."""
    device = bytes(
        [_DEVICE_LEN, DEVICE_DESCRIPTOR, 0x00, 0x02, device_class, 0, 0, 64]
    ) + vendor_id.to_bytes(2, "little") + product_id.to_bytes(2, "little") + bytes(
        [0x00, 0x01, 1, 2, 3, 1]
    )
    body = b""
    for number, (cls, sub, proto) in enumerate(interfaces):
        body += bytes([_INTERFACE_LEN, INTERFACE_DESCRIPTOR, number, 0, 2, cls, sub, proto, 0])
        for ep in (0x81, 0x02):  # two bulk endpoints, enough to look real
            body += bytes([7, 5, ep, 2, 0x00, 0x02, 0])
    total = _CONFIG_LEN + len(body)
    config = bytes([_CONFIG_LEN, CONFIG_DESCRIPTOR]) + total.to_bytes(2, "little") + bytes(
        [len(interfaces), 1, 0, 0x80, 50]
    )
    return device + config + body
