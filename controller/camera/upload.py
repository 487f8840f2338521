"""The still's way to the dashboard: a spool on the node (AES-GCM under a key derived from the
node key), and an HTTP upload signed by the node key (not MQTT: images are large and are
personal data that never belong on the event bus).

The signature covers a context string, the node, the camera.still event id and the image's
SHA-256. It is made when the still is taken, by the key that seals its camera.still event, and
kept with the image in the spool: the dashboard checks it with the key that signed that seq
(dashboard.ingest.trust.signer: the current key from its handover on, a retired key for the
seqs below, a revoked key never). A still spooled before ``secroom keys rotate`` therefore
uploads after the rotation as it was signed, with no old private key kept for it; a stolen key
the admin revoked uploads nothing. The spool's own key follows the node key: at the start after
a rotation, the files sealed under the previous key (``<key>.prev``) are sealed again under the
new one (``Spool.reseal``). A replayed upload stores nothing new (stills are keyed by event id).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import NamedTuple

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from controller.envelope import b64u, unb64u
from controller.keys import derive_secret

CONTEXT = b"secroom/v1/camera-still\n"
HEADER_NODE = "X-Secroom-Node"
HEADER_STILL = "X-Secroom-Still"
HEADER_SIG = "X-Secroom-Signature"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}_[0-9]{1,19}\.still$")


SIGNED = b"secroom-still-sig1\n"  # spooled plaintext: SIGNED + 64-byte signature + image
# or ABOUT + 64-byte signature + 2-byte length + JSON (record, camera, door) + image
ABOUT = b"secroom-still-sig2\n"
SIG_BYTES = 64
REVOKED = "revoked"  # the suffix of a still set aside: the key that signed it was revoked
UNREADABLE = "unreadable"  # the suffix of a file that opens under no key of the node


class UploadError(Exception):
    """The dashboard did not take the still; it stays spooled and is retried."""


class KeyRevoked(UploadError):
    """The dashboard refuses the still for good: the key that signed it was revoked (HTTP 410,
    reason ``key_revoked``). Retrying cannot help: the still is set aside, never deleted."""


class Spooled(NamedTuple):
    image: bytes
    signature: str | None  # None in a file spooled before signatures were kept
    about: dict[str, str | None]  # record, camera, door ({} in a file spooled before them)


def upload_message(node: str, still_id: str, sha256_hex: str) -> bytes:
    return CONTEXT + f"{node}\n{still_id}\n{sha256_hex}".encode()


def sign_upload(key: Ed25519PrivateKey, node: str, still_id: str, image: bytes) -> str:
    return b64u(key.sign(upload_message(node, still_id, hashlib.sha256(image).hexdigest())))


class StillSigner:
    """Signs a still's upload with the key this process journals with: the key that seals the
    still's camera.still event (both are loaded once, at the node's start)."""

    def __init__(self, key: Ed25519PrivateKey, node: str) -> None:
        self._key = key
        self.node = node

    def __call__(self, still_id: str, image: bytes) -> str:
        return sign_upload(self._key, self.node, still_id, image)


class Spool:
    """Stills waiting for their upload, one encrypted file each, named by the still's id, the
    upload's signature and what the still was taken for sealed with the image. Set aside in the
    same folder, counted, never deleted: a file that opens under no key of the node
    (``.unreadable``), a still the dashboard refuses for good because the key that signed it was
    revoked (``.revoked``, still sealed and resealed at a rotation: the operator decides)."""

    def __init__(self, folder: Path, key: Ed25519PrivateKey,
                 previous: Ed25519PrivateKey | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._aead = AESGCM(derive_secret(key, "camera-spool"))
        self._previous = AESGCM(derive_secret(previous, "camera-spool")) if previous else None
        self.unreadable = 0

    def _path(self, still_id: str) -> Path:
        return self.folder / (still_id.replace(":", "_") + ".still")

    def _write(self, still_id: str, plain: bytes, suffix: str = ".still") -> None:
        nonce = os.urandom(12)
        blob = nonce + self._aead.encrypt(nonce, plain, still_id.encode())
        tmp = self._path(still_id).with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path(still_id).with_suffix(suffix))

    def put(self, still_id: str, image: bytes, signature: str,
            about: dict[str, str | None] | None = None) -> None:
        sig = unb64u(signature)
        if len(sig) != SIG_BYTES:
            raise ValueError("an upload signature is 64 bytes")
        meta = json.dumps(about or {}, sort_keys=True, separators=(",", ":")).encode()
        self._write(still_id, ABOUT + sig + len(meta).to_bytes(2, "big") + meta + image)

    def set_aside(self, still_id: str, why: str = REVOKED) -> None:
        path = self._path(still_id)
        path.rename(path.with_suffix(f".{why}"))

    def set_aside_count(self, why: str) -> int:
        """Files set aside for ``why`` (on disk: the count survives a restart)."""
        return sum(1 for p in self.folder.iterdir() if p.suffix == f".{why}")

    def waiting(self) -> list[str]:
        ids = []
        for p in sorted(self.folder.iterdir()):
            if _NAME.match(p.name):
                node, _, seq = p.stem.rpartition("_")
                ids.append(f"{node}:{seq}")
        return ids

    def _open(self, still_id: str, blob: bytes) -> tuple[bytes, bool] | None:
        """(plaintext, sealed under the previous key) or None."""
        for aead, old in ((self._aead, False), (self._previous, True)):
            if aead is None:
                continue
            try:
                return aead.decrypt(blob[:12], blob[12:], still_id.encode()), old
            except (InvalidTag, ValueError):
                continue
        return None

    def get(self, still_id: str) -> Spooled | None:
        """The spooled still, or None when the file is gone or opens under no key (then set
        aside, counted)."""
        path = self._path(still_id)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        opened = self._open(still_id, blob)
        if opened is None:
            self.unreadable += 1
            self.set_aside(still_id, UNREADABLE)
            return None
        plain, old = opened
        if old:
            self._write(still_id, plain)
        for magic in (ABOUT, SIGNED):
            if plain.startswith(magic):
                cut = len(magic) + SIG_BYTES
                sig, rest, about = b64u(plain[len(magic):cut]), plain[cut:], {}
                if magic == ABOUT:
                    size = int.from_bytes(rest[:2], "big")
                    about, rest = json.loads(rest[2:2 + size]), rest[2 + size:]
                return Spooled(rest, sig, about)
        return Spooled(plain, None, {})

    def reseal(self) -> int:
        """Seal again under the current key every file sealed under the previous one, those
        set aside for a revoked key too (the start after a rotation); returns how many."""
        done = 0
        if self._previous is None:
            return 0
        for path in sorted(self.folder.iterdir()):
            if path.suffix not in (".still", f".{REVOKED}") \
                    or not _NAME.match(path.with_suffix(".still").name):
                continue
            node, _, seq = path.stem.rpartition("_")
            try:
                blob = path.read_bytes()
            except FileNotFoundError:
                continue
            opened = self._open(f"{node}:{seq}", blob)
            if opened is not None and opened[1]:
                self._write(f"{node}:{seq}", opened[0], path.suffix)
                done += 1
        return done

    def remove(self, still_id: str) -> None:
        self._path(still_id).unlink(missing_ok=True)


class Uploader:
    def __init__(self, url: str, node: str, ca_file: Path | None = None) -> None:
        self.url = url
        self._node = node
        self._client = httpx.Client(verify=str(ca_file) if ca_file else True, trust_env=False)

    def upload(self, still_id: str, image: bytes, signature: str, timeout_s: float) -> None:
        headers = {HEADER_NODE: self._node, HEADER_STILL: still_id, HEADER_SIG: signature,
                   "Content-Type": "image/jpeg"}
        try:
            resp = self._client.post(self.url, content=image, headers=headers,
                                     timeout=httpx.Timeout(timeout_s))
        except httpx.HTTPError as exc:
            raise UploadError(f"dashboard unreachable: {type(exc).__name__}") from exc
        if resp.status_code == 410 and _reason(resp) == "key_revoked":
            raise KeyRevoked(f"dashboard refused the still for good: {resp.text[:200]}")
        if resp.status_code not in (200, 201):
            raise UploadError(f"dashboard refused the still: {resp.status_code} "
                              f"{resp.text[:200]}")

    def close(self) -> None:
        self._client.close()


def _reason(resp: httpx.Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return body.get("reason") if isinstance(body, dict) else None
