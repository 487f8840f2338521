from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from usb_guard.errors import TokenError
from usb_guard.medium_token import (
    BLOCK_SIZE,
    MAGIC_V1,
    BlockDevice,
    DeviceBinding,
    MediumToken,
    RawTokenReader,
    decode_block,
    encode_block,
    legacy_token_digest,
    mismatch_reason,
    new_token,
    token_digest,
    token_matches,
    write_token,
)

STICK = DeviceBinding("0781", "5583", "AA0001", 60_062_500)


def v1_block(token: MediumToken) -> bytes:
    """A block as media registered before the binding were written (layout v1)."""
    body = MAGIC_V1 + token.control_number.encode().ljust(32, b"\0") + token.token
    return (body + hashlib.sha256(body).digest()).ljust(BLOCK_SIZE, b"\0")


def test_round_trip_on_a_raw_device_file(tmp_path: Path) -> None:
    dev = tmp_path / "sdz"
    dev.write_bytes(b"\xaa" * (2 * 1024 * 1024))
    token = MediumToken("USB-0042", new_token())
    write_token(dev, token, STICK)
    read = RawTokenReader().read(BlockDevice("sdz", dev, "/sys/block/sdz"))
    assert read == replace(token, bound_to=STICK.digest())
    assert dev.read_bytes()[:16] == b"\xaa" * 16  # nothing outside the reserved block changed


def test_digest_is_bound_to_control_number_token_and_device() -> None:
    token = decode_block(encode_block(MediumToken("USB-0001", new_token()), STICK))
    digest = token_digest(token.token, "USB-0001", STICK)
    assert token_matches(token, "USB-0001", digest, STICK)
    assert not token_matches(token, "USB-0002", digest, STICK)
    assert not token_matches(replace(token, token=new_token()), "USB-0001", digest, STICK)
    for other in (replace(STICK, serial="AA0002"), replace(STICK, serial=None),
                  replace(STICK, sectors=STICK.sectors * 2), replace(STICK, product_id="5584"),
                  replace(STICK, vendor_id="0951")):
        assert not token_matches(token, "USB-0001", digest, other)
        assert "another device" in mismatch_reason(token, other)
    assert token.token.hex() not in digest
    assert mismatch_reason(token, STICK) == "medium token does not match the ledger"


def test_v1_tokens_pass_only_when_accepted_and_then_on_any_stick() -> None:
    token = decode_block(v1_block(MediumToken("USB-0001", new_token())))
    assert token.bound_to is None
    digest = legacy_token_digest(token.token, "USB-0001")
    assert not token_matches(token, "USB-0001", digest, STICK)
    assert "re-initialise" in mismatch_reason(token, STICK)
    assert token_matches(token, "USB-0001", digest, STICK, accept_unbound=True)
    assert token_matches(token, "USB-0001", digest, replace(STICK, sectors=1), accept_unbound=True)
    assert not token_matches(token, "USB-0001", token_digest(token.token, "USB-0001", STICK),
                             STICK, accept_unbound=True)


def test_damaged_or_missing_block_raises() -> None:
    for block in (bytearray(encode_block(MediumToken("USB-0001", new_token()), STICK)),
                  bytearray(v1_block(MediumToken("USB-0001", new_token())))):
        block[40] ^= 1
        with pytest.raises(TokenError, match="checksum"):
            decode_block(bytes(block))
    bound = bytearray(encode_block(MediumToken("USB-0001", new_token()), STICK))
    bound[90] ^= 1  # inside the binding: a block edited to claim another device
    with pytest.raises(TokenError, match="checksum"):
        decode_block(bytes(bound))
    with pytest.raises(TokenError, match="no secroom token"):
        decode_block(b"\x00" * BLOCK_SIZE)
    with pytest.raises(TokenError, match="too short"):
        decode_block(b"SECROOM")


def test_unreadable_device_raises_token_error(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="cannot open"):
        RawTokenReader().read(BlockDevice("sdq", tmp_path / "missing", "/sys/block/sdq"))
    short = tmp_path / "short"
    short.write_bytes(b"x" * 100)
    with pytest.raises(TokenError, match="too short"):
        RawTokenReader().read(BlockDevice("sdq", short, "/sys/block/sdq"))


def test_bad_token_parameters_are_refused() -> None:
    with pytest.raises(TokenError):
        encode_block(MediumToken("", new_token()), STICK)
    with pytest.raises(TokenError):
        encode_block(MediumToken("USB-1", b"short"), STICK)
