"""The agent's token check of one disk: read the token, recompute the binding, pick the medium.

The binding is what the kernel reports now (USB ids and serial from the device, capacity from
the disk), never what the block on the medium claims: a token copied onto another stick is
checked against that stick's binding and fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from usb_guard.errors import SysfsError, TokenError
from usb_guard.medium_token import (
    BlockDevice,
    DeviceBinding,
    TokenReader,
    mismatch_reason,
    token_matches,
)
from usb_guard.policy import RegisteredMedium
from usb_guard.sysfs import Sysfs, UsbDevice


@dataclass(frozen=True)
class TokenCheck:
    medium: RegisteredMedium | None  # the candidate whose token this is; None: refused
    reason: str


def check_token(sysfs: Sysfs, reader: TokenReader, device: UsbDevice, disk: BlockDevice,
                candidates: tuple[RegisteredMedium, ...], *,
                accept_unbound: bool = False) -> TokenCheck:
    try:
        binding = DeviceBinding(device.vendor_id or "", device.product_id or "", device.serial,
                                sysfs.disk_sectors(disk.name))
        token = reader.read(disk)
    except (TokenError, SysfsError) as exc:
        return TokenCheck(None, str(exc))
    for medium in candidates:
        if token_matches(token, medium.control_number, medium.token_digest, binding,
                         accept_unbound=accept_unbound):
            if token.bound_to is None:
                return TokenCheck(medium, "medium token verified (v1 token, not bound to the "
                                          "stick: re-initialise the medium)")
            return TokenCheck(medium, "medium token verified")
    return TokenCheck(None, mismatch_reason(token, binding))
