"""The medium token: a random secret written onto each medium at registration.

Where: a 512-byte block in the reserved area before the first partition, at
``DEFAULT_TOKEN_OFFSET`` (1 MiB - 4 KiB). Media issued by the room are initialised with a
partition table whose first partition starts at 1 MiB (the usual alignment), so this area
belongs to no partition and no file system: the agent reads it from the raw block device right
after authorisation, before anything needs to be mounted, and a user cannot delete it by
accident. Reformatting the partition keeps it; a full wipe erases it (the medium is then
re-initialised with a new token).

Layout: magic (16) | control number, NUL padded (32) | token (32) | SHA-256 of the preceding
80 bytes (32) | zero padding to 512.

The ledger and the policy keep only ``token_digest(token, control_number)``, an HMAC keyed by
the token: comparing needs the token from the medium, and reading the policy does not give it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from usb_guard.errors import TokenError

MAGIC = b"SECROOM-MEDIUM\x00\x01"
BLOCK_SIZE = 512
TOKEN_BYTES = 32
DEFAULT_TOKEN_OFFSET = 1024 * 1024 - 4096
_CN_BYTES = 32
_DIGEST_CONTEXT = b"secroom/usb-medium-token/v1/"


@dataclass(frozen=True)
class MediumToken:
    control_number: str
    token: bytes


def new_token() -> bytes:
    return secrets.token_bytes(TOKEN_BYTES)


def token_digest(token: bytes, control_number: str) -> str:
    """The keyed digest stored in the ledger and the policy (hex SHA-256 HMAC)."""
    return hmac.new(token, _DIGEST_CONTEXT + control_number.encode(), hashlib.sha256).hexdigest()


def token_matches(medium: MediumToken, control_number: str, expected_digest: str) -> bool:
    if medium.control_number != control_number:
        return False
    return hmac.compare_digest(token_digest(medium.token, control_number), expected_digest)


def encode_block(medium: MediumToken) -> bytes:
    cn = medium.control_number.encode("ascii")
    if not cn or len(cn) > _CN_BYTES or b"\x00" in cn:
        raise TokenError(f"control number must be 1..{_CN_BYTES} ASCII characters")
    if len(medium.token) != TOKEN_BYTES:
        raise TokenError(f"a medium token is {TOKEN_BYTES} bytes")
    body = MAGIC + cn.ljust(_CN_BYTES, b"\x00") + medium.token
    return (body + hashlib.sha256(body).digest()).ljust(BLOCK_SIZE, b"\x00")


def decode_block(block: bytes) -> MediumToken:
    if len(block) < BLOCK_SIZE:
        raise TokenError(f"token block too short ({len(block)} bytes)")
    if not block.startswith(MAGIC):
        raise TokenError("no secroom token block on this medium")
    body_len = len(MAGIC) + _CN_BYTES + TOKEN_BYTES
    body, check = block[:body_len], block[body_len : body_len + 32]
    if not hmac.compare_digest(hashlib.sha256(body).digest(), check):
        raise TokenError("token block checksum mismatch (damaged or forged block)")
    raw_cn = body[len(MAGIC) : len(MAGIC) + _CN_BYTES].rstrip(b"\x00")
    try:
        control_number = raw_cn.decode("ascii")
    except UnicodeDecodeError as exc:
        raise TokenError("control number in the token block is not ASCII") from exc
    return MediumToken(control_number, body[len(MAGIC) + _CN_BYTES :])


@dataclass(frozen=True)
class BlockDevice:
    """A whole-disk block device that appeared under an authorised USB device."""

    name: str  # e.g. "sdb"
    dev_path: Path  # e.g. /dev/sdb
    sys_path: str  # the udev/sysfs path of the disk


class TokenReader(Protocol):
    def read(self, disk: BlockDevice) -> MediumToken: ...


class RawTokenReader:
    """Reads the token block from the raw block device (the real reader; a file works too)."""

    def __init__(self, offset: int = DEFAULT_TOKEN_OFFSET) -> None:
        self.offset = offset

    def read(self, disk: BlockDevice) -> MediumToken:
        try:
            fd = os.open(disk.dev_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise TokenError(f"cannot open {disk.dev_path}: {exc.strerror}") from exc
        try:
            block = os.pread(fd, BLOCK_SIZE, self.offset)
        except OSError as exc:
            raise TokenError(f"cannot read {disk.dev_path}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        return decode_block(block)


def write_token(dev_path: Path, medium: MediumToken, offset: int = DEFAULT_TOKEN_OFFSET) -> None:
    """Write the token block at registration (the medium must be initialised with its first
    partition at or after 1 MiB)."""
    block = encode_block(medium)
    try:
        fd = os.open(dev_path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise TokenError(f"cannot open {dev_path} for writing: {exc.strerror}") from exc
    try:
        if os.pwrite(fd, block, offset) != len(block):
            raise TokenError(f"short write of the token block to {dev_path}")
        os.fsync(fd)
    except OSError as exc:
        raise TokenError(f"cannot write the token block to {dev_path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
