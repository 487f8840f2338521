from __future__ import annotations

from pathlib import Path

import pytest

from usb_guard.errors import TokenError
from usb_guard.medium_token import (
    BLOCK_SIZE,
    BlockDevice,
    MediumToken,
    RawTokenReader,
    decode_block,
    encode_block,
    new_token,
    token_digest,
    token_matches,
    write_token,
)


def test_round_trip_on_a_raw_device_file(tmp_path: Path) -> None:
    dev = tmp_path / "sdz"
    dev.write_bytes(b"\xaa" * (2 * 1024 * 1024))
    token = MediumToken("USB-0042", new_token())
    write_token(dev, token)
    read = RawTokenReader().read(BlockDevice("sdz", dev, "/sys/block/sdz"))
    assert read == token
    assert dev.read_bytes()[:16] == b"\xaa" * 16  # nothing outside the reserved block changed


def test_digest_is_bound_to_control_number_and_token() -> None:
    token = MediumToken("USB-0001", new_token())
    digest = token_digest(token.token, "USB-0001")
    assert token_matches(token, "USB-0001", digest)
    assert not token_matches(token, "USB-0002", digest)
    assert not token_matches(MediumToken("USB-0001", new_token()), "USB-0001", digest)
    assert token.token.hex() not in digest


def test_damaged_or_missing_block_raises() -> None:
    block = bytearray(encode_block(MediumToken("USB-0001", new_token())))
    block[40] ^= 1
    with pytest.raises(TokenError, match="checksum"):
        decode_block(bytes(block))
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
        encode_block(MediumToken("", new_token()))
    with pytest.raises(TokenError):
        encode_block(MediumToken("USB-1", b"short"))
