"""The still upload (node-signed, no session) and the camera.failed review item, on real SQLite
(and PostgreSQL for the store), with the app's real middleware and migrations' models."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from controller.camera.events import CameraFailed, CameraStill
from controller.camera.upload import HEADER_NODE, HEADER_SIG, HEADER_STILL, sign_upload
from controller.envelope import canonical_json, topic_for
from controller.keys import public_b64, rotation_statement
from dashboard import services
from dashboard.camera import web as camera_web
from dashboard.camera.store import StillKey, image_for
from dashboard.ingest.core import IngestCore
from dashboard.models import Anomaly, StoredEvent
from dashboard.models.camera import CameraImage
from tests.dashboard.conftest import T0, FakeNode, msg
from tests.dashboard.web.conftest import WebApp

JPEG = b"\xff\xd8\xff\xe0" + b"still" * 400


def headers(node: str, still_id: str, sig: str) -> dict[str, str]:
    return {HEADER_NODE: node, HEADER_STILL: still_id, HEADER_SIG: sig,
            "Content-Type": "image/jpeg"}


@pytest.fixture
def gw(webapp: WebApp) -> Iterator[FakeNode]:
    node = FakeNode()
    with webapp.sm() as db:
        node.enrol(db, roles=("door_gateway",))
    camera_web.UPLOAD_REFUSALS.clear()
    yield node


def count(sm: sessionmaker[Session], model: type, *where: object) -> int:
    with sm() as db:
        return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_a_signed_upload_is_stored_encrypted_once(webapp: WebApp, gw: FakeNode) -> None:
    c = webapp.client()
    sig = sign_upload(gw.key, "gw1", "gw1:7", JPEG)
    first = c.post("/api/camera/stills", content=JPEG, headers=headers("gw1", "gw1:7", sig))
    again = c.post("/api/camera/stills", content=JPEG, headers=headers("gw1", "gw1:7", sig))
    assert (first.status_code, again.status_code) == (201, 200)
    with webapp.sm() as db:
        row = db.scalar(select(CameraImage))
        assert row is not None and row.size == len(JPEG) and row.ciphertext is not None
        assert b"still" * 10 not in row.ciphertext
        key = StillKey.of(webapp.settings.camera, webapp.settings.data_dir)
        # no camera.still event yet (MQTT is late): the image waits for its record
        assert image_for(db, key, "gw1:7") == ("pending", None)
    assert (webapp.settings.data_dir / "camera.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("case", "status", "reason"), [
    ("forged", 403, "bad_signature"),
    ("other_node", 403, "wrong_node"),
    ("unknown_node", 403, "not_approved"),
    ("bad_id", 400, "bad_request"),
    ("too_big", 413, "bad_size"),
    ("empty", 400, "bad_size"),
])
def test_a_bad_upload_is_refused_counted_and_stores_nothing(
        webapp: WebApp, gw: FakeNode, case: str, status: int, reason: str) -> None:
    body, node, still, key = JPEG, "gw1", "gw1:7", gw.key
    if case == "forged":
        key = Ed25519PrivateKey.generate()
    elif case == "other_node":
        still = "gw2:7"
    elif case == "unknown_node":
        node, still = "gw9", "gw9:7"
    elif case == "bad_id":
        still = "gw1-7"
    elif case == "too_big":
        body = JPEG * 10_000
    elif case == "empty":
        body = b""
    r = webapp.client().post("/api/camera/stills", content=body,
                             headers=headers(node, still, sign_upload(key, node, still, body)))
    assert r.status_code == status and r.json()["reason"] == reason
    assert camera_web.UPLOAD_REFUSALS[reason] == 1
    assert count(webapp.sm, CameraImage) == 0
    raised = count(webapp.sm, Anomaly, Anomaly.kind == "camera_upload_refused")
    assert raised == (1 if case == "forged" else 0)


def test_a_still_whose_hash_differs_from_its_signed_event_fails(webapp: WebApp,
                                                                gw: FakeNode) -> None:
    """The node signed one image's hash in camera.still and uploaded another (or the upload
    was swapped in transit by someone holding the node key): shown as failing."""
    with webapp.sm() as db:
        event = gw.event("camera.still", CameraStill(
            camera="door-cam", target="door:d1", record="gw1:1", record_kind="door.access",
            door="d1", sha256=hashlib.sha256(b"another image").hexdigest(), size=len(JPEG)))
        IngestCore(site=gw.site).process(db, [msg(event)], T0 + timedelta(hours=1))
        db.commit()
    r = webapp.client().post("/api/camera/stills", content=JPEG, headers=headers(
        "gw1", event.id, sign_upload(gw.key, "gw1", event.id, JPEG)))
    assert r.status_code == 201
    with webapp.sm() as db:
        key = StillKey.of(webapp.settings.camera, webapp.settings.data_dir)
        assert image_for(db, key, event.id) == ("failing", None)


def test_a_camera_that_fails_raises_a_review_item(session: Session, core: IngestCore,
                                                  node: FakeNode) -> None:
    node.enrol(session, roles=("door_gateway",))
    record = node.access("alice", granted=False, reason="unknown_card")
    failed = node.event("camera.failed", CameraFailed(
        camera="door-cam", target="door:d1", record=record.id, record_kind="door.access",
        door="d1", reason="timeout", detail="no answer in 3.0s"))
    core.process(session, [msg(record), msg(failed)], T0 + timedelta(hours=1))
    session.commit()
    item = session.scalar(select(Anomaly).where(Anomaly.kind == "camera_failed"))
    assert item is not None and item.node == "gw1" and item.place == "d1"
    assert (item.detail["record"], item.detail["reason"]) == (record.id, "timeout")


def test_the_key_file_must_hold_32_bytes(tmp_path: Path) -> None:
    (tmp_path / "camera.key").write_bytes(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        StillKey(tmp_path / "camera.key")


def test_a_still_taken_before_a_key_rotation_is_stored_after_it(webapp: WebApp,
                                                               gw: FakeNode) -> None:
    """The node signed the upload with the key that sealed the still's event; it rotated its
    key (a handover signed by the old one) before the upload got through. The dashboard checks
    the upload with the key of that seq, as the ingest checks events: stored, intact. The old
    key cannot upload a seq above the handover; once revoked, not even its own range."""
    core = IngestCore(site=gw.site)
    old_key, new_key = gw.key, Ed25519PrivateKey.generate()
    record = gw.access("alice", granted=False, reason="unknown_card")
    still = gw.event("camera.still", CameraStill(
        camera="door-cam", target="door:d1", record=record.id, record_kind="door.access",
        door="d1", sha256=hashlib.sha256(JPEG).hexdigest(), size=len(JPEG)))
    spooled_sig = sign_upload(old_key, "gw1", still.id, JPEG)  # made when it was taken
    handover = rotation_statement(old_key, new_key.public_key(), node="gw1", site=gw.site,
                                  from_seq=gw.seq + 1)
    gw.key = new_key
    after = gw.event("camera.still", CameraStill(
        camera="door-cam", target="door:d1", record=record.id, record_kind="door.access",
        door="d1", sha256=hashlib.sha256(JPEG).hexdigest(), size=len(JPEG)))
    state = (topic_for(gw.site, "gw1", "state"), canonical_json(
        {"state": "online", "public_key": gw.public, "key_rotation": handover}))
    with webapp.sm() as db:
        core.process(db, [msg(record), msg(still)], T0 + timedelta(hours=1))
        core.process(db, [state], T0 + timedelta(hours=1))
        core.process(db, [msg(after)], T0 + timedelta(hours=1))
        db.commit()
        assert db.scalar(select(func.count()).select_from(StoredEvent)) == 3
    c = webapp.client()

    def post(still_id: str, sig: str) -> tuple[int, str]:
        r = c.post("/api/camera/stills", content=JPEG, headers=headers("gw1", still_id, sig))
        return r.status_code, r.json().get("reason", "")

    assert post(still.id, spooled_sig) == (201, "")
    # above the handover the old key signs nothing; the new key does
    assert post(after.id, sign_upload(old_key, "gw1", after.id, JPEG)) == (403, "bad_signature")
    assert post(after.id, sign_upload(new_key, "gw1", after.id, JPEG)) == (201, "")
    key = StillKey.of(webapp.settings.camera, webapp.settings.data_dir)
    with webapp.sm() as db:
        assert image_for(db, key, still.id) == ("ok", JPEG)
        assert image_for(db, key, after.id) == ("ok", JPEG)
        services.revoke_key(db, "admin", "gw1", public_b64(old_key.public_key()), now=T0)
        db.commit()
    # revoked (lost or stolen): even a still of its own range is refused, counted and raised
    # (410: for good, the node sets it aside and stops sending it)
    assert post(record.id, sign_upload(old_key, "gw1", record.id, JPEG)) == (410, "key_revoked")
    assert post(still.id, spooled_sig) == (410, "key_revoked")  # even one stored before
    assert camera_web.UPLOAD_REFUSALS == {"bad_signature": 1, "key_revoked": 2}
    # one open review item for the node and kind (the second refusal joins it)
    assert count(webapp.sm, Anomaly, Anomaly.kind == "camera_upload_refused") == 1
    assert count(webapp.sm, Anomaly, Anomaly.kind == "camera_upload_revoked") == 1
    assert count(webapp.sm, CameraImage) == 2
