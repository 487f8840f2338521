"""A still spooled on the gateway before ``secroom keys rotate`` reaches the dashboard after it.

Real parts up to the wire: Motion's still, the gateway's camera step as ``build_cameras`` makes
it from the gateway's config and key file, its encrypted spool, the node-signed upload over
HTTP to the dashboard app served by uvicorn (SQLite), the node's events and key handover
through the dashboard's ingest. The dashboard is down while the still is taken (spooled); the
node key is rotated (``controller.keys.rotate``, as the CLI does) and the camera step restarts
under the new key: the spool is sealed again under it, the upload carries the signature made
when the still was taken, and the dashboard checks it with the key of that seq (the retired
key below the handover): stored, intact. A still taken after the rotation is signed by the new
key.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from controller.adapters import build_cameras
from controller.camera.upload import Spool
from controller.envelope import Event, canonical_json, topic_for
from controller.events import DoorAccess
from controller.keys import load_private, previous_path, public_b64, rotate, rotation_statement
from dashboard.camera.store import StillKey, image_for
from dashboard.ingest.core import IngestCore
from dashboard.models.camera import CameraImage
from tests.controller.camera.conftest import camera_config
from tests.controller.gateway_kit import DOOR, make_kit
from tests.dashboard.conftest import FakeNode, msg
from tests.dashboard.web.conftest import WebApp, serve_app
from tests.support import free_port
from tests.support.camera import MotionCamera

pytestmark = pytest.mark.integration


class Journal:
    """Stands in for the node's journal: seals each event with the node's current key (a real
    hash chain, FakeNode) and keeps them for the dashboard's ingest."""

    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self.events: list[Event] = []

    def __call__(self, kind: str, data: BaseModel) -> Event:
        event = self.node.event(kind, data, ts=datetime.now(UTC))
        self.events.append(event)
        return event


def _ingest(webapp: WebApp, items: list[tuple[str, bytes]]) -> None:
    with webapp.sm() as db:
        IngestCore(site=webapp.settings.site).process(db, items, datetime.now(UTC))
        db.commit()


def test_a_still_spooled_before_a_key_rotation_uploads_after_it(
        tmp_path: Path, motion: MotionCamera, webapp: WebApp) -> None:
    dashboard_port = free_port()  # the node knows the dashboard's address before it is up
    url = f"http://127.0.0.1:{dashboard_port}"
    kit = make_kit(tmp_path / "gw", mqtt_port=1, site=webapp.settings.site, cameras={
        "upload_url": url + "/api/camera/stills", "timeout_s": 10, "retry_s": 3600,
        "camera": [camera_config(motion)],
        "watch": [{"target": f"door:{DOOR}", "camera": "door-cam",
                   "events": ["door.access.denied"]}]})
    key_file = kit.config.key_file
    old_key = load_private(key_file)
    node = FakeNode("gw1", site=webapp.settings.site, key=old_key)
    with webapp.sm() as db:
        node.enrol(db, roles=("door_gateway",))
    journal = Journal(node)
    denied = DoorAccess(door=DOOR, reader="r", direction="in", granted=False,
                        reason="unknown_card")

    # the dashboard is down: the still is taken, sealed and spooled
    cams = build_cameras(kit.config, old_key, journal)
    assert cams is not None
    cams.start()
    try:
        record = journal("door.access", denied)
        cams.on_event("door.access", denied, record.id, record.ts)
        assert cams.wait_idle(60)
    finally:
        cams.stop()
    still = journal.events[-1]
    assert still.kind == "camera.still" and cams.spool.waiting() == [still.id]
    assert cams.counters["upload_failed"] == 1

    # `secroom keys rotate`, then the restart: the journal hands over to the new key
    _, new_key = rotate(key_file)
    assert previous_path(key_file).exists()
    handover = rotation_statement(old_key, new_key.public_key(), node="gw1",
                                  site=webapp.settings.site, from_seq=node.seq + 1)
    node.key = new_key
    state = (topic_for(webapp.settings.site, "gw1", "state"), canonical_json(
        {"state": "online", "public_key": public_b64(new_key.public_key()),
         "key_rotation": handover}))
    _ingest(webapp, [msg(e) for e in journal.events] + [state])
    cams = build_cameras(kit.config, load_private(key_file), journal)
    assert cams is not None
    # sealed again under the new key at the start: the admin may now delete the old key
    previous_path(key_file).unlink()
    found = Spool(cams.spool.folder, new_key).get(still.id)
    assert found is not None and hashlib.sha256(found[0]).hexdigest() == still.data["sha256"]

    # the dashboard is back: the spooled still uploads with the signature of its time
    with serve_app(webapp.app, port=dashboard_port):
        cams.start()
        try:
            cams.retry_uploads()
            assert cams.spool.waiting() == [] and cams.counters["uploaded"] == 1
            later = journal("door.access", denied)  # after the rotation: the new key signs
            cams.on_event("door.access", denied, later.id, later.ts)
            assert cams.wait_idle(60)
            assert cams.counters["uploaded"] == 2 and cams.spool.waiting() == []
        finally:
            cams.stop()
    fresh = journal.events[-1]
    assert fresh.kind == "camera.still"
    _ingest(webapp, [msg(e) for e in journal.events[-2:]])
    key = StillKey.of(webapp.settings.camera, webapp.settings.data_dir)
    with webapp.sm() as db:
        for s in (still, fresh):
            integrity, shown = image_for(db, key, s.id)
            assert integrity == "ok" and shown is not None
            assert hashlib.sha256(shown).hexdigest() == s.data["sha256"]
        assert len(db.scalars(select(CameraImage)).all()) == 2
