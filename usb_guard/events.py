"""Event payloads usb_guard hands to the node runtime, and the emit interface it uses.

usb_guard never imports the runtime: the agent is given an ``emit`` callable which journals the
event first and publishes it later, so nothing is lost while the broker is down.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

KIND_INSERTED = "usb.inserted"
KIND_REMOVED = "usb.removed"

VerdictName = Literal["allow", "block", "readonly", "removed_token_mismatch"]
Phase = Literal["insert", "startup_scan", "rescan", "policy_change", "token_check"]


class Emit(Protocol):
    """The node runtime's ``emit``: ``data`` is the kind's model (controller.events.KINDS)."""

    def __call__(self, kind: str, data: BaseModel, /) -> Any: ...


def serial_sha256(serial: str | None) -> str | None:
    """A stable digest of the serial, to correlate events without publishing the serial."""
    if serial is None:
        return None
    return hashlib.sha256(serial.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def mask_serial(serial: str | None) -> str | None:
    """Only the last four characters are shown: a serial may be long and unique."""
    if serial is None:
        return None
    tail = serial[-4:] if len(serial) > 4 else ""
    return "*" * min(max(len(serial) - len(tail), 0), 12) + tail


class UsbInserted(BaseModel):
    """usb.inserted: a verdict on a device (insertion, start-up scan, policy change, token check).

    A mass-storage device gets one event at the decision (phase insert) and one more once its
    medium token has been read (phase token_check), whose verdict is final.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: VerdictName
    phase: Phase
    rule: str = Field(description='the class rule, medium rule or "default" that decided')
    control_number: str | None = None
    host: str
    device: str = Field(description="sysfs name of the device, e.g. 1-2.3")
    vendor_id: str | None = None
    product_id: str | None = None
    serial_sha256: str | None = None
    serial_masked: str | None = None
    interfaces: tuple[str, ...] = ()
    refused_interfaces: tuple[str, ...] = Field(
        default=(), description="interfaces left unauthorised on an allowed device"
    )
    reason: str = ""


class UsbRemoved(BaseModel):
    """usb.removed: a device left the bus (unplugged, or removed after a token mismatch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    device: str
    control_number: str | None = None
    vendor_id: str | None = None
    product_id: str | None = None
