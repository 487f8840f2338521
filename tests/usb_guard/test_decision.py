from __future__ import annotations

from datetime import timedelta

from usb_guard.decision import decide
from usb_guard.descriptors import build_descriptors, parse_descriptors
from usb_guard.policy import ClassRule, MediumIdentity, UsbPolicy
from usb_guard.sysfs import UsbDevice

from .conftest import HOST, NOW, make_medium


def device(interfaces: list[tuple[int, int, int]], serial: str | None = "AA0001",
           vid: int = 0x0781, pid: int = 0x5583) -> UsbDevice:
    parsed = parse_descriptors(build_descriptors(vid, pid, interfaces))
    return UsbDevice("1-1", f"{vid:04x}", f"{pid:04x}", serial, parsed)


STICK = device([(8, 6, 0x50)])


def test_hub_keyboard_mouse_allowed_without_any_policy() -> None:
    for ifaces, rule in [([(9, 0, 0)], "hub"), ([(3, 1, 1)], "hid-keyboard"),
                         ([(3, 1, 2)], "hid-mouse")]:
        verdict = decide(device(ifaces, None, 1, 2), None, HOST, NOW)
        assert (verdict.action, verdict.rule) == ("allow", rule)


def test_storage_without_policy_or_registration_is_blocked() -> None:
    assert decide(STICK, None, HOST, NOW).rule == "no_policy"
    assert decide(STICK, UsbPolicy(), HOST, NOW).rule == "unregistered"


def test_registered_medium_allowed_and_carries_its_candidate() -> None:
    medium, _ = make_medium()
    verdict = decide(STICK, UsbPolicy(media=(medium,)), HOST, NOW)
    assert verdict.action == "allow" and verdict.needs_token_check
    assert verdict.control_number == "USB-0001"


def test_states_outside_usable_states_are_blocked() -> None:
    for state in ("registered", "returned", "wiped", "lost", "disposed"):
        medium, _ = make_medium(state=state)
        verdict = decide(STICK, UsbPolicy(media=(medium,)), HOST, NOW)
        assert (verdict.action, verdict.rule) == ("block", f"state:{state}")
    medium, _ = make_medium(state="returned")
    policy = UsbPolicy(media=(medium,), usable_states=("returned",))
    assert decide(STICK, policy, HOST, NOW).action == "allow"


def test_any_host_wildcard_and_usable_until() -> None:
    medium, _ = make_medium(hosts=("*",), usable_until=NOW - timedelta(minutes=1))
    assert decide(STICK, UsbPolicy(media=(medium,)), "elsewhere", NOW).rule == "expired"
    later = medium.model_copy(update={"usable_until": NOW + timedelta(hours=1)})
    assert decide(STICK, UsbPolicy(media=(later,)), "elsewhere", NOW).action == "allow"


def test_descriptor_hash_must_match_when_registered() -> None:
    medium, _ = make_medium()
    pinned = medium.model_copy(update={"identity": MediumIdentity(
        vendor_id="0781", product_id="5583", serial="AA0001", descriptors_sha256="0" * 64)})
    assert decide(STICK, UsbPolicy(media=(pinned,)), HOST, NOW).rule == "descriptors_mismatch"
    right = pinned.model_copy(update={"identity": pinned.identity.model_copy(
        update={"descriptors_sha256": STICK.descriptors_sha256})})
    assert decide(STICK, UsbPolicy(media=(right,)), HOST, NOW).action == "allow"


def test_read_only_flag_and_forced_read_only() -> None:
    medium, _ = make_medium(read_only=True)
    assert decide(STICK, UsbPolicy(media=(medium,)), HOST, NOW).action == "readonly"
    plain, _ = make_medium()
    policy = UsbPolicy(media=(plain,))
    assert decide(STICK, policy, HOST, NOW, force_read_only=True).action == "readonly"


def test_class_rule_can_block_and_default_can_allow() -> None:
    policy = UsbPolicy(class_rules=(ClassRule(pattern="03:00:*", action="block", label="no-hid"),
                                    ClassRule(pattern="03:*:*", action="allow", label="hid")),
                       default="allow")
    generic = device([(3, 0, 0)], None, 1, 2)
    assert decide(generic, policy, HOST, NOW).rule == "no-hid"
    assert decide(device([(3, 1, 1)], None, 1, 2), policy, HOST, NOW).rule == "hid"
    printer = device([(7, 1, 2)], None, 1, 2)
    verdict = decide(printer, policy, HOST, NOW)
    assert (verdict.action, verdict.rule) == ("allow", "default")
    assert decide(printer, UsbPolicy(), HOST, NOW).action == "block"


def test_malformed_device_is_blocked() -> None:
    broken = UsbDevice("1-1", "0781", "5583", None, None, "device descriptor truncated")
    verdict = decide(broken, UsbPolicy(default="allow"), HOST, NOW)
    assert (verdict.action, verdict.rule) == ("block", "malformed_descriptors")
    no_ids = UsbDevice("1-1", None, "5583", None, STICK.descriptors)
    assert decide(no_ids, UsbPolicy(default="allow"), HOST, NOW).rule == "malformed_ids"


def test_per_interface_allows_the_acceptable_part_of_a_composite_device() -> None:
    combo = device([(3, 1, 1), (8, 6, 0x50)], None, 0x04F2, 0x1234)
    assert decide(combo, UsbPolicy(), HOST, NOW).action == "block"
    verdict = decide(combo, UsbPolicy(), HOST, NOW, per_interface=True)
    assert (verdict.action, verdict.rule, verdict.refused_interfaces) == (
        "allow", "hid-keyboard", ("08:06:50",))
    webcam_and_mouse = device([(0x0E, 1, 0), (3, 1, 2)], None, 1, 2)
    verdict = decide(webcam_and_mouse, UsbPolicy(), HOST, NOW, per_interface=True)
    assert verdict.refused_interfaces == ("0e:01:00",) and verdict.rule == "hid-mouse"
    only_refused = device([(0x0E, 1, 0)], None, 1, 2)
    assert decide(only_refused, UsbPolicy(), HOST, NOW, per_interface=True).action == "block"


def test_registered_medium_keeps_storage_and_loses_refused_extras() -> None:
    medium, _ = make_medium()
    plain = medium.model_copy(update={"identity": MediumIdentity(
        vendor_id="0781", product_id="5583", serial="AA0001")})  # interfaces not recorded
    with_camera = device([(8, 6, 0x50), (0x0E, 1, 0)])
    policy = UsbPolicy(media=(plain,))
    assert decide(with_camera, policy, HOST, NOW).rule == "default"
    verdict = decide(with_camera, policy, HOST, NOW, per_interface=True)
    assert (verdict.action, verdict.control_number) == ("allow", "USB-0001")
    assert verdict.refused_interfaces == ("0e:01:00",)


def test_a_forged_registered_identity_is_blocked_whole_even_per_interface() -> None:
    medium, _ = make_medium()  # registered with interfaces ("08:06:50",)
    badusb = device([(8, 6, 0x50), (3, 1, 1)])
    verdict = decide(badusb, UsbPolicy(media=(medium,)), HOST, NOW, per_interface=True)
    assert (verdict.action, verdict.rule) == ("block", "interfaces_mismatch")


def test_rule_name_stays_short_with_many_candidates() -> None:
    media = tuple(make_medium(f"USB-{i:04d}", serial=None)[0] for i in range(1, 40))
    verdict = decide(device([(8, 6, 0x50)], None), UsbPolicy(media=media), HOST, NOW)
    assert verdict.rule == "medium:USB-0001,USB-0002,USB-0003,USB-0004,USB-0005,+34"
    assert len(verdict.candidates) == 39 and verdict.control_number is None
