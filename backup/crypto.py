"""All cryptography of the backup engine (the only module importing `cryptography`).

* Operator key pair: X25519. The public half lives on the gateway; the private half is kept
  off the gateway in a file sealed with a passphrase (scrypt -> ChaCha20-Poly1305).
* A "key group" is one ephemeral X25519 key pair per pack (or per snapshot manifest): the data
  key is HKDF-SHA256(X25519(eph, operator_pub)). The gateway forgets the ephemeral private key
  as soon as the pack is written, so it can never derive the data key again.
* Blobs are sealed with AES-256-GCM under the group key, nonce = 4 zero bytes + 64-bit sequence.
* Chunk ids are HMAC-SHA256 under the dedup key (hashlib, fast and GIL-free on large buffers).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from backup.errors import ConfigError, IntegrityError, KeyError_

PUBLIC_PREFIX = "secroom-backup-public-key-v1 "
PRIVATE_FORMAT = "secroom-backup-private-key"
DEFAULT_SCRYPT_N = 2**15  # 32 MiB of memory, about 0.1 s here; stored in the key file


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint(public: bytes) -> str:
    return hashlib.sha256(b"secroom-backup-fp" + public).hexdigest()[:16]


def _raw_pub(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --- operator key pair -------------------------------------------------------------------


@dataclass(frozen=True)
class PrivateKey:
    secret: bytes
    public: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"PrivateKey(fingerprint={fingerprint(self.public)})"


def generate_keypair() -> PrivateKey:
    key = X25519PrivateKey.generate()
    secret = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return PrivateKey(secret, _raw_pub(key.public_key()))


def public_key_text(public: bytes) -> str:
    return PUBLIC_PREFIX + b64(public) + "\n"


def load_public_key(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"public key file {path} not found (make one with `backup keygen`)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"public key file {path} is unreadable: {exc}") from exc
    if not text.startswith(PUBLIC_PREFIX.strip()):
        raise ConfigError(f"{path} is not a secroom backup public key")
    try:
        raw = unb64(text.split()[-1])
        X25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ConfigError(f"{path}: malformed public key") from exc
    return raw


def _kdf(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def private_key_file(key: PrivateKey, passphrase: bytes, *, n: int = DEFAULT_SCRYPT_N) -> bytes:
    if not passphrase:
        raise ConfigError("an empty passphrase is not allowed")
    salt, nonce = os.urandom(16), os.urandom(12)
    header = {"format": PRIVATE_FORMAT, "v": 1, "public": b64(key.public),
              "kdf": {"name": "scrypt", "n": n, "r": 8, "p": 1, "salt": b64(salt)},
              "cipher": "chacha20-poly1305", "nonce": b64(nonce)}
    aad = json.dumps(header, sort_keys=True).encode()
    sealed = ChaCha20Poly1305(_kdf(passphrase, salt, n, 8, 1)).encrypt(nonce, key.secret, aad)
    return (json.dumps({**header, "sealed": b64(sealed)}, sort_keys=True, indent=1) + "\n").encode()


def load_private_key(path: Path, passphrase: bytes) -> PrivateKey:
    try:
        doc = json.loads(path.read_bytes())
        header = {k: doc[k] for k in ("format", "v", "public", "kdf", "cipher", "nonce")}
        if header["format"] != PRIVATE_FORMAT or header["v"] != 1:
            raise ValueError("not a secroom backup private key")
        kdf = header["kdf"]
        if kdf["name"] != "scrypt" or not 2**10 <= int(kdf["n"]) <= 2**22:
            raise ValueError("unsupported key derivation")
        sealed = unb64(doc["sealed"])
    except FileNotFoundError as exc:
        raise ConfigError(f"private key file {path} not found") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a readable secroom backup private key ({exc})") from exc
    aad = json.dumps(header, sort_keys=True).encode()
    wrap = _kdf(passphrase, unb64(kdf["salt"]), int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
    try:
        secret = ChaCha20Poly1305(wrap).decrypt(unb64(header["nonce"]), sealed, aad)
    except InvalidTag as exc:
        raise KeyError_(f"wrong passphrase for private key file {path}") from exc
    public = _raw_pub(X25519PrivateKey.from_private_bytes(secret).public_key())
    if public != unb64(header["public"]):
        raise KeyError_(f"{path}: private and public halves do not match")
    return PrivateKey(secret, public)


# --- key groups: write-only encryption to the operator public key --------------------------


def _hkdf(shared: bytes, eph: bytes, operator: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph + operator,
                info=b"secroom-backup v1 " + purpose).derive(shared)


def new_group_key(operator_public: bytes, purpose: bytes) -> tuple[bytes, bytes]:
    """(ephemeral public key, data key). The ephemeral private key is dropped here."""
    eph = X25519PrivateKey.generate()
    shared = eph.exchange(X25519PublicKey.from_public_bytes(operator_public))
    eph_pub = _raw_pub(eph.public_key())
    return eph_pub, _hkdf(shared, eph_pub, operator_public, purpose)


def open_group_key(key: PrivateKey, eph_pub: bytes, purpose: bytes) -> bytes:
    try:
        peer = X25519PublicKey.from_public_bytes(eph_pub)
        shared = X25519PrivateKey.from_private_bytes(key.secret).exchange(peer)
    except ValueError as exc:
        raise IntegrityError("malformed ephemeral key in repository object") from exc
    return _hkdf(shared, eph_pub, key.public, purpose)


def nonce(seq: int) -> bytes:
    return b"\0\0\0\0" + struct.pack(">Q", seq)


class Sealer:
    """AES-256-GCM under one group key. Thread-safe (the OpenSSL context is per call)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, seq: int, data: bytes | memoryview, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce(seq), data, aad)

    def open(self, seq: int, data: bytes | memoryview, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce(seq), data, aad)
        except InvalidTag as exc:
            raise IntegrityError("authentication failed: repository data is corrupt") from exc


def seal_to(operator_public: bytes, purpose: bytes, data: bytes, aad: bytes) -> bytes:
    """One-shot sealed box: ephemeral public key (32) + AES-GCM ciphertext."""
    eph, key = new_group_key(operator_public, purpose)
    return eph + Sealer(key).seal(0, data, eph + aad)


def open_sealed(key: PrivateKey, purpose: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 48:
        raise IntegrityError("sealed object truncated")
    eph = blob[:32]
    return Sealer(open_group_key(key, eph, purpose)).open(0, blob[32:], eph + aad)


# --- keyed ids -----------------------------------------------------------------------------


def chunk_id(dedup_key: bytes, data: bytes | memoryview) -> bytes:
    return hmac.digest(dedup_key, data, "sha256")


def keyed_tag(dedup_key: bytes, text: str) -> str:
    """A 128-bit keyed tag of a path (BLAKE2b: one cheap call per file in the walk)."""
    data = text.encode("utf-8", "surrogateescape")
    return hashlib.blake2b(data, key=dedup_key, digest_size=16, person=b"secroom-path").hexdigest()


def content_hash(data: bytes | memoryview) -> bytes:
    return hashlib.sha256(data).digest()
