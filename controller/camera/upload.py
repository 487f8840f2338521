"""The still's way to the dashboard: a spool on the node (AES-GCM under a key derived from the
node key), and an HTTP upload signed by the node key (not MQTT: images are large and are
personal data that never belong on the event bus).

The signature covers a context string, the node, the camera.still event id and the image's
SHA-256: the dashboard checks it with the key it approved for the node, and the image's hash
against the signed event. A replayed upload stores nothing new (stills are keyed by event id).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from controller.envelope import b64u
from controller.keys import derive_secret

CONTEXT = b"secroom/v1/camera-still\n"
HEADER_NODE = "X-Secroom-Node"
HEADER_STILL = "X-Secroom-Still"
HEADER_SIG = "X-Secroom-Signature"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}_[0-9]{1,19}\.still$")


class UploadError(Exception):
    """The dashboard did not take the still; it stays spooled and is retried."""


def upload_message(node: str, still_id: str, sha256_hex: str) -> bytes:
    return CONTEXT + f"{node}\n{still_id}\n{sha256_hex}".encode()


def sign_upload(key: Ed25519PrivateKey, node: str, still_id: str, image: bytes) -> str:
    return b64u(key.sign(upload_message(node, still_id, hashlib.sha256(image).hexdigest())))


class Spool:
    """Stills waiting for their upload, one encrypted file each, named by the still's id."""

    def __init__(self, folder: Path, key: Ed25519PrivateKey) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._aead = AESGCM(derive_secret(key, "camera-spool"))

    def _path(self, still_id: str) -> Path:
        return self.folder / (still_id.replace(":", "_") + ".still")

    def put(self, still_id: str, image: bytes) -> None:
        nonce = os.urandom(12)
        blob = nonce + self._aead.encrypt(nonce, image, still_id.encode())
        tmp = self._path(still_id).with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path(still_id))

    def waiting(self) -> list[str]:
        ids = []
        for p in sorted(self.folder.iterdir()):
            if _NAME.match(p.name):
                node, _, seq = p.stem.rpartition("_")
                ids.append(f"{node}:{seq}")
        return ids

    def get(self, still_id: str) -> bytes | None:
        """The image, or None when the file is gone or does not decrypt (it is removed)."""
        path = self._path(still_id)
        try:
            blob = path.read_bytes()
            return self._aead.decrypt(blob[:12], blob[12:], still_id.encode())
        except FileNotFoundError:
            return None
        except (InvalidTag, ValueError):
            path.unlink(missing_ok=True)
            return None

    def remove(self, still_id: str) -> None:
        self._path(still_id).unlink(missing_ok=True)


class Uploader:
    def __init__(self, url: str, key: Ed25519PrivateKey, node: str,
                 ca_file: Path | None = None) -> None:
        self.url = url
        self._key = key
        self._node = node
        self._client = httpx.Client(verify=str(ca_file) if ca_file else True, trust_env=False)

    def upload(self, still_id: str, image: bytes, timeout_s: float) -> None:
        headers = {HEADER_NODE: self._node, HEADER_STILL: still_id,
                   HEADER_SIG: sign_upload(self._key, self._node, still_id, image),
                   "Content-Type": "image/jpeg"}
        try:
            resp = self._client.post(self.url, content=image, headers=headers,
                                     timeout=httpx.Timeout(timeout_s))
        except httpx.HTTPError as exc:
            raise UploadError(f"dashboard unreachable: {type(exc).__name__}") from exc
        if resp.status_code not in (200, 201):
            raise UploadError(f"dashboard refused the still: {resp.status_code} "
                              f"{resp.text[:200]}")

    def close(self) -> None:
        self._client.close()
