"""The medium token: a random secret written onto each medium at registration, bound to it.

Where: a 512-byte block in the reserved area before the first partition, at
``DEFAULT_TOKEN_OFFSET`` (1 MiB - 4 KiB). Media issued by the room are initialised with a
partition table whose first partition starts at 1 MiB (the usual alignment), so this area
belongs to no partition and no file system: the agent reads it from the raw block device while
udev still hides the disk from user space, and a user cannot delete it by accident.
Reformatting the partition keeps it; a full wipe erases it (the medium is then re-initialised
with a new token).

Layout (v2): magic (16) | control number, NUL padded (32) | token (32) | binding (32) |
SHA-256 of the preceding 112 bytes (32) | zero padding to 512. v1 blocks (written before the
binding existed) have no binding field: magic ``...\x00\x01`` and the checksum at byte 80.

The ledger and the policy keep only ``token_digest(token, control_number, binding)``, an HMAC
keyed by the token over the control number and the ``DeviceBinding``: the USB vendor and product
ids, the serial and the capacity the kernel reports for the stick it was written on. Comparing
needs the token from the medium, and reading the policy does not give it; a copy of the token
(or of the whole image) on another stick fails, because that stick's binding differs. The
binding stored in the block only tells the agent why a token failed (written for another
device); it is not trusted: the digest is what proves it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from usb_guard.errors import TokenError

MAGIC = b"SECROOM-MEDIUM\x00\x02"
MAGIC_V1 = b"SECROOM-MEDIUM\x00\x01"
BLOCK_SIZE = 512
TOKEN_BYTES = 32
DEFAULT_TOKEN_OFFSET = 1024 * 1024 - 4096
_CN_BYTES = 32
_DIGEST_CONTEXT = b"secroom/usb-medium-token/v2/"
_V1_CONTEXT = b"secroom/usb-medium-token/v1/"
_BINDING_CONTEXT = b"secroom/usb-medium-binding/v2\x00"


@dataclass(frozen=True)
class DeviceBinding:
    """What the kernel reports about a stick and a copy of its content cannot take along."""

    vendor_id: str  # idVendor, 4 lowercase hex digits
    product_id: str
    serial: str | None  # iSerial as sysfs shows it, None if the stick has none
    sectors: int  # capacity in 512-byte sectors (/sys/block/<disk>/size)

    def digest(self) -> bytes:
        text = json.dumps([self.vendor_id, self.product_id, self.serial, self.sectors],
                          ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(_BINDING_CONTEXT + text.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class MediumToken:
    control_number: str
    token: bytes
    bound_to: bytes | None = None  # the binding digest read from a v2 block; None: v1 block


def new_token() -> bytes:
    return secrets.token_bytes(TOKEN_BYTES)


def token_digest(token: bytes, control_number: str, binding: DeviceBinding) -> str:
    """The keyed digest stored in the ledger and the policy (hex SHA-256 HMAC)."""
    message = _DIGEST_CONTEXT + control_number.encode() + b"\x00" + binding.digest()
    return hmac.new(token, message, hashlib.sha256).hexdigest()


def legacy_token_digest(token: bytes, control_number: str) -> str:
    """The v1 digest, bound to nothing (media registered before the binding existed)."""
    return hmac.new(token, _V1_CONTEXT + control_number.encode(), hashlib.sha256).hexdigest()


def token_matches(medium: MediumToken, control_number: str, expected_digest: str,
                  binding: DeviceBinding, *, accept_unbound: bool = False) -> bool:
    """Whether the token read from a medium is the one the ledger holds for ``control_number``
    on the device the kernel describes as ``binding``. A v1 token passes only with
    ``accept_unbound`` (a migration setting: such a token also passes on a copy)."""
    if medium.control_number != control_number:
        return False
    if medium.bound_to is None:
        return accept_unbound and hmac.compare_digest(
            legacy_token_digest(medium.token, control_number), expected_digest)
    return hmac.compare_digest(token_digest(medium.token, control_number, binding),
                               expected_digest)


def mismatch_reason(medium: MediumToken, binding: DeviceBinding) -> str:
    """Why a token read from a medium did not match (for the event; never the token)."""
    if medium.bound_to is None:
        return "token written before device binding (v1): re-initialise the medium"
    if not hmac.compare_digest(medium.bound_to, binding.digest()):
        return ("token was written for another device (USB ids, serial or capacity differ): "
                "a copied token")
    return "medium token does not match the ledger"


def encode_block(medium: MediumToken, binding: DeviceBinding) -> bytes:
    cn = medium.control_number.encode("ascii")
    if not cn or len(cn) > _CN_BYTES or b"\x00" in cn:
        raise TokenError(f"control number must be 1..{_CN_BYTES} ASCII characters")
    if len(medium.token) != TOKEN_BYTES:
        raise TokenError(f"a medium token is {TOKEN_BYTES} bytes")
    body = MAGIC + cn.ljust(_CN_BYTES, b"\x00") + medium.token + binding.digest()
    return (body + hashlib.sha256(body).digest()).ljust(BLOCK_SIZE, b"\x00")


def decode_block(block: bytes) -> MediumToken:
    if len(block) < BLOCK_SIZE:
        raise TokenError(f"token block too short ({len(block)} bytes)")
    if block.startswith(MAGIC):
        bound = True
    elif block.startswith(MAGIC_V1):
        bound = False
    else:
        raise TokenError("no secroom token block on this medium")
    body_len = len(MAGIC) + _CN_BYTES + TOKEN_BYTES + (32 if bound else 0)
    body, check = block[:body_len], block[body_len : body_len + 32]
    if not hmac.compare_digest(hashlib.sha256(body).digest(), check):
        raise TokenError("token block checksum mismatch (damaged or forged block)")
    start = len(MAGIC) + _CN_BYTES
    raw_cn = body[len(MAGIC) : start].rstrip(b"\x00")
    try:
        control_number = raw_cn.decode("ascii")
    except UnicodeDecodeError as exc:
        raise TokenError("control number in the token block is not ASCII") from exc
    token = body[start : start + TOKEN_BYTES]
    return MediumToken(control_number, token, body[start + TOKEN_BYTES :] if bound else None)


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


def write_token(dev_path: Path, medium: MediumToken, binding: DeviceBinding,
                offset: int = DEFAULT_TOKEN_OFFSET) -> None:
    """Write the token block, bound to ``binding``, at registration (the medium must be
    initialised with its first partition at or after 1 MiB)."""
    block = encode_block(medium, binding)
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
