"""Ed25519 signing keys for nodes and the policy signer, stored as PEM files (mode 0600)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controller.envelope import b64u, unb64u


class KeyFileError(Exception):
    """A key file is missing, unreadable or not an Ed25519 key."""


def generate(path: Path, *, overwrite: bool = False) -> Ed25519PrivateKey:
    """Create a new private key at ``path`` (0600) and its public key beside it (.pub)."""
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} exists; refusing to overwrite it (--force replaces it)")
    key = Ed25519PrivateKey.generate()
    _write(path, key)
    return key


def _write(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with contextlib.suppress(FileNotFoundError):  # a stale temp file (or a planted link) goes
        os.unlink(tmp)
    # O_EXCL (and O_NOFOLLOW): the key is written only into a file this call created, 0600
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    path.with_suffix(path.suffix + ".pub").write_text(public_b64(key.public_key()) + "\n")


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} not found; create it: `secroom keys init`") from exc
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a readable PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return key


def public_b64(key: Ed25519PublicKey) -> str:
    """The public key as 43 characters of base64url (raw 32 bytes)."""
    return b64u(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def public_from_b64(text: str) -> Ed25519PublicKey:
    try:
        raw = unb64u(text.strip())
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise KeyFileError("not a base64url Ed25519 public key (expected 43 characters)") from exc


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        return public_from_b64(path.read_text())
    except FileNotFoundError as exc:
        raise KeyFileError(f"public key file {path} not found") from exc


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable identifier for a public key (first 16 chars of its base64url)."""
    return public_b64(key)[:16]


def derive_secret(key: Ed25519PrivateKey, purpose: str) -> bytes:
    """A 32-byte secret for ``purpose`` derived from the node key (HKDF-SHA256): it stays on
    the node and changes when the key is rotated."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    return HKDF(hashes.SHA256(), 32, salt=None, info=f"secroom {purpose} v1".encode()).derive(raw)


# -- rotation ------------------------------------------------------------------------------------
# A node hands its journal over to a new key with a statement signed by the old one:
# {"node", "site", "old", "new", "from_seq", "sig"}. ``from_seq`` is the first seq the new key
# signs; events below it stay signed by the old key (the dashboard still accepts those in flight).
# The node announces the statement in its state message; the dashboard accepts it only from the
# key it has approved for that node (controller.journal makes it, dashboard.ingest.state reads it).
ROTATION_CONTEXT = b"secroom/v1/key-rotation\n"


def _rotation_body(node: str, site: str, old: str, new: str, from_seq: int) -> bytes:
    from controller.envelope import canonical_json

    return ROTATION_CONTEXT + canonical_json(
        {"node": node, "site": site, "old": old, "new": new, "from_seq": from_seq})


def rotation_statement(old: Ed25519PrivateKey, new: Ed25519PublicKey, *, node: str, site: str,
                       from_seq: int) -> dict[str, object]:
    old_pub, new_pub = public_b64(old.public_key()), public_b64(new)
    sig = old.sign(_rotation_body(node, site, old_pub, new_pub, from_seq))
    return {"node": node, "site": site, "old": old_pub, "new": new_pub, "from_seq": from_seq,
            "sig": b64u(sig)}


def open_rotation(raw: object, *, node: str, site: str) -> tuple[str, str, int]:
    """(old, new, from_seq) of a rotation statement signed by its old key, for ``node`` at
    ``site``; raises KeyFileError saying what is wrong."""
    from cryptography.exceptions import InvalidSignature

    if not isinstance(raw, dict) or set(raw) != {"node", "site", "old", "new", "from_seq", "sig"}:
        raise KeyFileError("a key rotation statement has node, site, old, new, from_seq, sig")
    old, new, seq, sig = raw["old"], raw["new"], raw["from_seq"], raw["sig"]
    if raw["node"] != node or raw["site"] != site:
        raise KeyFileError("the key rotation statement names another node or site")
    if not (isinstance(seq, int) and not isinstance(seq, bool) and 1 <= seq <= 2**62):
        raise KeyFileError("the key rotation statement's from_seq is not a seq")
    if not (isinstance(old, str) and isinstance(new, str) and isinstance(sig, str)) or old == new:
        raise KeyFileError("the key rotation statement's keys are not two different keys")
    old_key = public_from_b64(old)
    public_from_b64(new)
    try:
        old_key.verify(unb64u(sig), _rotation_body(node, site, old, new, seq))
    except (InvalidSignature, ValueError) as exc:
        raise KeyFileError("the key rotation statement is not signed by its old key") from exc
    return old, new, seq


def previous_path(key_file: Path) -> Path:
    """Where ``secroom keys rotate`` keeps the old key until the node's journals hand over."""
    return key_file.with_name(key_file.name + ".prev")


def rotate(key_file: Path) -> tuple[Ed25519PrivateKey, Ed25519PrivateKey]:
    """Keep the current key as ``<key>.prev`` (0600) and write a new one in its place; returns
    (old, new). The node's journals hand over to the new key when the node next starts."""
    old = load_private(key_file)
    _write(previous_path(key_file), old)
    return old, generate(key_file, overwrite=True)
