"""Stills at rest: AES-GCM (``cryptography``) under the dashboard's camera key, the still's event
id as associated data (a row's image cannot be moved to another still's row unnoticed).

Integrity, as a viewer reads it: ``ok`` the image decrypts and its SHA-256 and size are those
of the node's signed camera.still event; ``failing`` it does not decrypt or does not match;
``pending`` the image is here but its event not yet (MQTT is late); ``waiting`` the event is
here and its image not yet, within ``WAIT`` of the event's arrival (the node uploads at once,
or retries its spool); ``missing`` no image came in that time; ``purged`` retention removed the
image (the event stays).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from controller.camera.events import KIND_STILL
from controller.camera.upload import upload_message
from controller.envelope import unb64u
from controller.keys import KeyFileError, public_from_b64
from dashboard.audit import append_audit
from dashboard.ingest.trust import REVOKED, Approval, past_keys, signer
from dashboard.models.camera import CameraImage
from dashboard.models.events import StoredEvent
from dashboard.models.nodes import Node
from dashboard.settings import CameraStoreSettings

Integrity = Literal["ok", "failing", "pending", "waiting", "missing", "purged"]
WAIT = timedelta(minutes=10)  # a still's image not here after this is "missing"


class UploadRefused(Exception):
    """An upload the dashboard does not store; ``status`` is the HTTP answer, ``reason`` the
    counter's name."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class StillKey:
    """The dashboard's camera key: 32 random bytes in a 0600 file, made on first use."""

    def __init__(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            raw = secrets.token_bytes(32)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # the first writer wins; a racing one reads its key
            except FileExistsError:
                raw = path.read_bytes()
            finally:
                tmp.unlink()
        if len(raw) != 32:
            raise ValueError(f"camera key {path} must hold 32 bytes; restore it from the backup")
        self._aead = AESGCM(raw)
        self.key_id = hashlib.sha256(b"secroom camera key\n" + raw).hexdigest()[:16]

    @classmethod
    def of(cls, settings: CameraStoreSettings, data_dir: Path) -> StillKey:
        return cls(settings.key_file or data_dir / "camera.key")

    def seal(self, still_id: str, image: bytes) -> tuple[bytes, bytes]:
        nonce = os.urandom(12)
        return nonce, self._aead.encrypt(nonce, image, still_id.encode())

    def open(self, still_id: str, nonce: bytes, ciphertext: bytes) -> bytes | None:
        try:
            return self._aead.decrypt(nonce, ciphertext, still_id.encode())
        except (InvalidTag, ValueError):
            return None


def _split(still_id: str) -> tuple[str, int]:
    node, _, seq = still_id.rpartition(":")
    if not node or not seq.isdigit() or len(seq) > 19 or len(node) > 64:
        raise UploadRefused(400, "bad_request", "X-Secroom-Still must be the event id node:seq")
    return node, int(seq)


def store_upload(session: Session, key: StillKey, *, node: str, still_id: str, signature: str,
                 image: bytes, now: datetime, max_bytes: int) -> bool:
    """Check and store one upload; True if stored now, False if it was already here (a retry).
    Raises UploadRefused (nothing stored) for a bad request or a bad signature."""
    owner, seq = _split(still_id)
    if owner != node:
        raise UploadRefused(403, "wrong_node", "a node uploads only its own stills")
    if not image or len(image) > max_bytes:
        raise UploadRefused(413 if image else 400, "bad_size",
                            f"a still is 1 to {max_bytes} bytes")
    row = session.scalar(select(Node).where(Node.name == node))
    if row is None or not row.approved or row.public_key is None:
        raise UploadRefused(403, "not_approved", f"node {node} is not approved")
    # the key that signs this seq (the one that sealed the camera.still event, which signed
    # the upload when the still was taken): a still spooled before a rotation still uploads
    approval = Approval.of(row)
    signed_by = signer(approval, seq, past_keys(session, {node: row}).get(node, []))
    if signed_by == REVOKED:  # 410: for good; the node sets the still aside (never resends it)
        raise UploadRefused(410, "key_revoked", f"the key that signed {still_id} was revoked; "
                            "this still is never accepted")
    try:
        public_from_b64(signed_by or "").verify(
            unb64u(signature), upload_message(node, still_id, hashlib.sha256(image).hexdigest()))
    except (InvalidSignature, KeyFileError, ValueError, TypeError) as exc:
        raise UploadRefused(403, "bad_signature",
                            "the signature does not verify with the node's key for that "
                            "seq") from exc
    if session.scalar(select(CameraImage.id).where(CameraImage.still_id == still_id)):
        return False
    nonce, sealed = key.seal(still_id, image)
    session.add(CameraImage(still_id=still_id, node=node, seq=seq, received_at=now,
                            size=len(image), key_id=key.key_id, nonce=nonce, ciphertext=sealed))
    return True


@dataclass(frozen=True, slots=True)
class StillView:
    still_id: str
    record: str
    camera: str
    ts: datetime | None
    integrity: Integrity
    clip: str | None
    size: int | None


def _event_of(session: Session, still_id: str) -> StoredEvent | None:
    node, _, seq = still_id.rpartition(":")
    if not seq.isdigit():
        return None
    return session.scalar(select(StoredEvent).where(
        StoredEvent.node == node, StoredEvent.seq == int(seq), StoredEvent.kind == KIND_STILL))


def check(key: StillKey, event: StoredEvent | None, row: CameraImage | None
          ) -> tuple[Integrity, bytes | None]:
    """The integrity of one still and, when it is ok, its image."""
    if row is not None and row.purged_at is not None:
        return "purged", None
    if row is None or row.ciphertext is None or row.nonce is None:
        return "missing", None
    image = key.open(row.still_id, row.nonce, row.ciphertext)
    if event is None:
        return ("pending" if image is not None else "failing"), None
    data: dict[str, Any] = event.data or {}
    if image is None or hashlib.sha256(image).hexdigest() != data.get("sha256") \
            or len(image) != data.get("size") or not event.chain_ok:
        return "failing", None
    return "ok", image


def image_for(session: Session, key: StillKey, still_id: str
              ) -> tuple[Integrity, bytes | None]:
    row = session.scalar(select(CameraImage).where(CameraImage.still_id == still_id))
    return check(key, _event_of(session, still_id), row)


def record_of(session: Session, still_id: str) -> str | None:
    """The record (event id) a stored still was taken for, once its camera.still is here."""
    event = _event_of(session, still_id)
    record = (event.data or {}).get("record") if event is not None else None
    return record if isinstance(record, str) else None


def stills_for(session: Session, key: StillKey, records: Iterable[tuple[str, datetime]],
               now: datetime | None = None) -> dict[str, list[StillView]]:
    """The stills taken for these records (event id, time), by record id: camera.still events
    of the same nodes from the earliest record's time to 10 minutes after the latest. With
    ``now``, an image not yet here for a still younger than ``WAIT`` is ``waiting``."""
    wanted = dict(records)
    if not wanted:
        return {}
    nodes = {r.rpartition(":")[0] for r in wanted}
    since, until = min(wanted.values()), max(wanted.values()) + timedelta(minutes=10)
    events = session.scalars(select(StoredEvent).where(
        StoredEvent.kind == KIND_STILL, StoredEvent.ts >= since - timedelta(minutes=1),
        StoredEvent.ts <= until, StoredEvent.node.in_(nodes))).all()
    events = [e for e in events if (e.data or {}).get("record") in wanted]
    ids = [f"{e.node}:{e.seq}" for e in events]
    rows = {r.still_id: r for r in session.scalars(
        select(CameraImage).where(CameraImage.still_id.in_(ids)))} if ids else {}
    out: dict[str, list[StillView]] = {}
    for e, still_id in zip(events, ids, strict=True):
        integrity, _ = check(key, e, rows.get(still_id))
        if integrity == "missing" and now is not None and now - e.received_at < WAIT:
            integrity = "waiting"  # (received: a node's clock may be off)
        data = e.data or {}
        out.setdefault(str(data["record"]), []).append(StillView(
            still_id, str(data["record"]), str(data.get("camera", "")), e.ts, integrity,
            data.get("clip") if isinstance(data.get("clip"), str) else None,
            data.get("size") if isinstance(data.get("size"), int) else None))
    return out


def purge_expired(session: Session, *, now: datetime, retention_days: int,
                  actor: str = "system:camera-retention") -> int:
    """Empty the images older than the retention (the camera.still events stay); audited."""
    cutoff = now - timedelta(days=retention_days)
    ids = session.scalars(select(CameraImage.still_id).where(
        CameraImage.received_at < cutoff, CameraImage.purged_at.is_(None))).all()
    if not ids:
        return 0
    session.execute(update(CameraImage).where(CameraImage.still_id.in_(ids)).values(
        ciphertext=None, nonce=None, purged_at=now))
    append_audit(session, actor=actor, action="camera.purge", target_type="camera_still",
                 target_id=f"{len(ids)} stills", before=None,
                 after={"purged": len(ids), "older_than": cutoff.isoformat()}, now=now)
    return len(ids)


class RetentionLoop:
    """The dashboard runtime's part that purges expired stills at start and every hour."""

    def __init__(self, sessionmaker: Any, retention_days: int, clock: Any,
                 interval_s: float = 3600.0) -> None:
        self._sm = sessionmaker
        self._days = retention_days
        self._clock = clock
        self._interval = interval_s

    def run(self, stop: Any) -> None:
        while True:
            with self._sm() as db:
                purge_expired(db, now=self._clock(), retention_days=self._days)
                db.commit()
            if stop.wait(self._interval):
                return
