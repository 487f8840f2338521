"""Initialising a medium at registration: read its identity, write its token.

Run on the registration workstation (where the agent does not block unregistered sticks), as
root: ``secroom usb init-medium --disk sdb --control-number USB-0001`` prints the identity and
the token digest that the dashboard's ledger stores. The medium must have been partitioned with
its first partition at or after 1 MiB, so the reserved area holding the token is free. The token
is bound to this stick (USB ids, serial, capacity as the kernel reports them), so a copy of it
on another stick fails the agent's check.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from usb_guard.errors import SysfsError, TokenError
from usb_guard.medium_token import (
    BLOCK_SIZE,
    DEFAULT_TOKEN_OFFSET,
    DeviceBinding,
    MediumToken,
    new_token,
    token_digest,
    write_token,
)
from usb_guard.policy import MediumIdentity
from usb_guard.sysfs import BLOCK_NAME, Sysfs, usb_device_of

SECTOR = 512


@dataclass(frozen=True)
class InitialisedMedium:
    control_number: str
    usb_device: str
    identity: MediumIdentity
    token_digest: str
    sectors: int  # capacity the token is bound to

    @property
    def weakly_bound(self) -> bool:
        """No serial: another stick of the same model and capacity would take a copied image."""
        return self.identity.serial is None


def usb_device_of_disk(sysfs: Sysfs, disk: str) -> str:
    if not BLOCK_NAME.fullmatch(disk):
        raise SysfsError(f"not a block device name: {disk[:40]!r}")
    try:
        target = os.readlink(sysfs.root / "block" / disk)
    except OSError as exc:
        raise SysfsError(f"no block device {disk}: {exc.strerror}") from exc
    usb = usb_device_of(target)
    if usb is None:
        raise SysfsError(f"{disk} is not on a USB device")
    return usb


def identity_of(sysfs: Sysfs, usb: str) -> MediumIdentity:
    device = sysfs.read_device(usb)
    if device.descriptors is None or device.vendor_id is None or device.product_id is None:
        raise SysfsError(f"{usb} has unreadable descriptors: {device.descriptor_error}")
    return MediumIdentity(vendor_id=device.vendor_id, product_id=device.product_id,
                          serial=device.serial, descriptors_sha256=device.descriptors_sha256,
                          interfaces=device.interfaces)


def first_partition_start(sysfs: Sysfs, disk: str) -> int | None:
    """Byte offset of the first partition, None if the disk has no partition table."""
    base = sysfs.root / "block" / disk
    starts = []
    for part in sysfs.partitions(disk):
        start = base / part / "start"
        if start.is_file():
            starts.append(int(start.read_text().strip()) * SECTOR)
    return min(starts) if starts else None


def initialise_medium(sysfs_root: Path, dev_root: Path, disk: str, control_number: str,
                      token_offset: int = DEFAULT_TOKEN_OFFSET) -> InitialisedMedium:
    sysfs = Sysfs(sysfs_root)
    usb = usb_device_of_disk(sysfs, disk)
    identity = identity_of(sysfs, usb)
    start = first_partition_start(sysfs, disk)
    if start is None or start < token_offset + BLOCK_SIZE:
        where = "no partition table" if start is None else f"first partition at byte {start}"
        raise TokenError(
            f"{disk} has {where}: repartition it with the first partition at 1 MiB "
            f"so the token block at byte {token_offset} belongs to no partition")
    binding = DeviceBinding(identity.vendor_id, identity.product_id, identity.serial,
                            sysfs.disk_sectors(disk))
    token = MediumToken(control_number, new_token())
    write_token(dev_root / disk, token, binding, token_offset)
    return InitialisedMedium(control_number, usb, identity,
                             token_digest(token.token, control_number, binding), binding.sectors)
