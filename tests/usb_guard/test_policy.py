from __future__ import annotations

import pytest
from pydantic import ValidationError

from usb_guard.events import UsbInserted, mask_serial, serial_sha256
from usb_guard.policy import ClassRule, MediumIdentity, UsbPolicy

from .conftest import NOW, Harness, make_medium


def test_policy_round_trips_through_json_as_it_travels_in_the_signed_policy() -> None:
    medium, _ = make_medium(usable_until=NOW, read_only=True)
    policy = UsbPolicy(media=(medium,), default="allow")
    again = UsbPolicy.model_validate_json(policy.model_dump_json())
    assert again == policy
    assert "token" not in policy.model_dump()["media"][0]  # only token_digest


@pytest.mark.parametrize("bad", [
    {"media": [], "surprise": 1},
    {"default": "maybe"},
    {"class_rules": [{"pattern": "08:*:50", "action": "allow", "label": "x"}]},
    {"class_rules": [{"pattern": "zz:*:*", "action": "allow", "label": "x"}]},
    {"class_rules": [{"pattern": "08:*:*", "action": "allow", "label": "bad label"}]},
])
def test_invalid_policies_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        UsbPolicy.model_validate(bad)


def test_identity_is_normalised_and_checked() -> None:
    ident = MediumIdentity(vendor_id="ABCD", product_id="00Ef")
    assert (ident.vendor_id, ident.product_id) == ("abcd", "00ef")
    with pytest.raises(ValidationError):
        MediumIdentity(vendor_id="abc", product_id="0001")
    with pytest.raises(ValidationError):
        MediumIdentity(vendor_id="abcd", product_id="0001", interfaces=("08:*:*",))


def test_class_rule_matching() -> None:
    rule = ClassRule(pattern="03:01:*", action="allow", label="boot-hid")
    assert rule.matches("03:01:02") and not rule.matches("03:00:00")
    assert ClassRule(pattern="09:*:*", action="allow", label="hub").matches("09:00:03")


def test_serial_never_travels_in_full() -> None:
    serial = "123456789018"  # looks like an individual number: must not appear in events
    event = UsbInserted(verdict="block", phase="insert", rule="unregistered", host="h",
                        device="1-1", serial_sha256=serial_sha256(serial),
                        serial_masked=mask_serial(serial))
    assert serial not in event.model_dump_json()
    assert event.serial_masked == "********9018"
    assert mask_serial("AB") == "**" and mask_serial(None) is None


def test_largest_possible_usb_event_stays_small(harness: Harness) -> None:
    """Whatever a device reports, the event fits easily in one envelope (64 KiB)."""
    from usb_guard.descriptors import MAX_INTERFACE_TYPES
    from usb_guard.simulated import DeviceSpec

    interfaces = tuple((0xFF, i, 0) for i in range(MAX_INTERFACE_TYPES - 1)) + ((8, 6, 0x50),)
    spec = DeviceSpec(0xFFFF, 0xFFFF, interfaces, "S" * 255, "x" * 4000)
    harness.policy = UsbPolicy(default="allow")
    harness.agent.start()
    name = harness.sim.plug(spec)
    harness.pump()
    event = harness.final(name)
    assert len(event.interfaces) == MAX_INTERFACE_TYPES
    assert len(event.model_dump_json()) < 4096
