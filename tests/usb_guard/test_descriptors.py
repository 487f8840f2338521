from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usb_guard.descriptors import build_descriptors, parse_descriptors
from usb_guard.errors import DescriptorError

KEYBOARD = build_descriptors(0x046D, 0xC31C, [(3, 1, 1), (3, 0, 0)])


def test_parses_ids_interfaces_and_hash() -> None:
    parsed = parse_descriptors(KEYBOARD)
    assert (parsed.vendor_id, parsed.product_id) == (0x046D, 0xC31C)
    assert [str(i) for i in parsed.interfaces] == ["03:01:01", "03:00:00"]
    assert parsed.sha256 == hashlib.sha256(KEYBOARD).hexdigest()


def test_alternate_settings_and_second_configuration_are_included() -> None:
    second = build_descriptors(1, 2, [(8, 6, 0x50), (8, 6, 0x50)])[18:]  # one more config
    raw = bytearray(KEYBOARD + second)
    raw[17] = 2  # bNumConfigurations
    parsed = parse_descriptors(bytes(raw))
    assert [str(i) for i in parsed.interfaces] == ["03:01:01", "03:00:00", "08:06:50"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:10], "device descriptor truncated"),
        (lambda b: b"\x09" + b[1:], "not a device descriptor"),
        (lambda b: b[:18], "no configuration"),
        (lambda b: b[:18] + b"\x09\x02\xff\x00" + b[22:], "wTotalLength"),
        (lambda b: b[:27] + b"\x00" + b[28:], "bad bLength"),
        (lambda b: b[:27] + b"\x05\x04" + b[29:], "too short"),
        (lambda b: b[:18] + b"\x09\x02\x09\x00\x00\x01\x00\x80\x32", "no interface"),
        (lambda b: b + b[18:], "bNumConfigurations"),
        (lambda b: b[:30], "bad wTotalLength"),  # configuration cut short
    ],
)
def test_malformed_descriptors_raise_a_typed_error(
    mutate: Callable[[bytes], bytes], message: str
) -> None:
    with pytest.raises(DescriptorError, match=message):
        parse_descriptors(mutate(KEYBOARD))


def test_oversized_descriptors_are_refused() -> None:
    with pytest.raises(DescriptorError, match="too long"):
        parse_descriptors(KEYBOARD + b"\x00" * 70000)


@settings(database=None)  # nothing written into the working directory
@given(st.binary(max_size=400))
def test_random_bytes_only_ever_raise_descriptor_error(raw: bytes) -> None:
    with contextlib.suppress(DescriptorError):
        parse_descriptors(raw)


@settings(database=None)  # nothing written into the working directory
@given(st.integers(0, len(KEYBOARD) - 1), st.integers(0, 255))
def test_single_byte_corruption_only_ever_raises_descriptor_error(pos: int, val: int) -> None:
    raw = bytearray(KEYBOARD)
    raw[pos] = val
    try:
        parsed = parse_descriptors(bytes(raw))
    except DescriptorError:
        return
    assert parsed.interfaces  # anything accepted still has at least one interface


def test_a_flood_of_interface_types_is_refused() -> None:
    many = [(0xFF, i, 0) for i in range(65)]
    with pytest.raises(DescriptorError, match="interface types"):
        parse_descriptors(build_descriptors(1, 2, many))
    assert len(parse_descriptors(build_descriptors(1, 2, many[:64])).interfaces) == 64
