"""A row's camera cell on live pages: a stored image is published on the bus (after its commit)
with the record it belongs to, the live stream's item names only the record, and the cell's
route renders the record's stills as the door log does: waiting for the image, then intact (the
image only for the roles that may see it), missing once the wait is over."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller.camera.events import CameraStill
from controller.camera.upload import HEADER_NODE, HEADER_SIG, HEADER_STILL, sign_upload
from dashboard.app import create_app
from dashboard.bus import Bus
from dashboard.i18n import Translator
from dashboard.ingest.core import IngestCore
from dashboard.web.live import live_item
from tests.dashboard.conftest import FakeNode, msg
from tests.dashboard.web.conftest import Clock, WebApp, make_db, make_settings

JPEG = b"\xff\xd8\xff\xe0" + b"cell" * 500


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[tuple[WebApp, Bus]]:
    settings = make_settings(tmp_path / "data")
    sm = make_db(settings)
    clock, bus = Clock(), Bus()
    w = WebApp(settings, sm, create_app(settings, sessionmaker=sm, bus=bus, clock=clock), clock)
    yield w, bus
    for c in w.clients.values():
        c.close()


def _cell(w: WebApp, role: str, record: str) -> tuple[str | None, bool]:
    """(the integrity shown, whether the image is in the cell) for ``role``."""
    client, _ = w.as_role(role)
    node, _, seq = record.partition(":")
    r = client.get(f"/camera/records/{node}/{seq}/stills")
    assert r.status_code == 200, r.text
    found = re.search(r'data-integrity="(\w+)"', r.text)
    return (found.group(1) if found else None), "<img " in r.text


def test_the_cell_waits_then_shows_the_still_intact_and_the_bus_says_so(
        live_app: tuple[WebApp, Bus]) -> None:
    w, bus = live_app
    gw = FakeNode(site=w.settings.site)
    with w.sm() as db:
        gw.enrol(db, roles=("door_gateway",))
    record = gw.access("alice", granted=False, reason="unknown_card", door="d1")
    still = gw.event("camera.still", CameraStill(
        camera="door-cam", target="door:d1", record=record.id, record_kind="door.access",
        door="d1", sha256=hashlib.sha256(JPEG).hexdigest(), size=len(JPEG)))
    assert _cell(w, "security_admin", record.id) == (None, False)  # no still yet
    with w.sm() as db:
        IngestCore(site=gw.site).process(db, [msg(record), msg(still)], w.clock())
        db.commit()
    assert _cell(w, "security_admin", record.id) == ("waiting", False)

    sub = bus.subscribe(("camera",))
    c = w.client()
    headers = {HEADER_NODE: "gw1", HEADER_STILL: still.id, "Content-Type": "image/jpeg",
               HEADER_SIG: sign_upload(gw.key, "gw1", still.id, JPEG)}
    assert c.post("/api/camera/stills", content=JPEG, headers=headers).status_code == 201
    published = sub.get(timeout=5)
    assert published is not None
    assert published.data == {"still": still.id, "record": record.id}
    item = live_item("camera", published.data, Translator("ja", ZoneInfo("Asia/Tokyo")))
    assert item == {"id": f"camera:{still.id}", "record": record.id}
    # a retried upload stores nothing new and says nothing
    assert c.post("/api/camera/stills", content=JPEG, headers=headers).status_code == 200
    assert sub.get(timeout=0.2) is None

    assert _cell(w, "security_admin", record.id) == ("ok", True)
    assert _cell(w, "auditor", record.id) == ("ok", True)
    assert _cell(w, "admin", record.id) == ("ok", False)  # told it exists, never the image


def test_a_still_whose_image_never_comes_is_missing_after_the_wait(
        live_app: tuple[WebApp, Bus]) -> None:
    w, _ = live_app
    gw = FakeNode(site=w.settings.site)
    with w.sm() as db:
        gw.enrol(db, roles=("door_gateway",))
    record = gw.event("door.forced", {"door": "d1"})
    still = gw.event("camera.still", CameraStill(
        camera="door-cam", target="door:d1", record=record.id, record_kind="door.forced",
        door="d1", sha256="0" * 64, size=10))
    with w.sm() as db:
        IngestCore(site=gw.site).process(db, [msg(record), msg(still)], w.clock())
        db.commit()
    assert _cell(w, "security_admin", record.id)[0] == "waiting"
    w.clock.advance(timedelta(minutes=11).total_seconds())
    assert _cell(w, "security_admin", record.id)[0] == "missing"


def test_live_items_of_camera_events_name_their_record() -> None:
    t = Translator("en", ZoneInfo("Asia/Tokyo"))
    msg_ = {"node": "gw1", "seq": 8, "kind": "camera.still", "ts": "2026-12-07T02:13:00.000000Z",
            "data": {"record": "gw1:7", "camera": "door-cam"}}
    item = live_item("event", msg_, t)
    assert (item["kind_id"], item["record"]) == ("camera.still", "gw1:7")
    tap = live_item("event", {**msg_, "kind": "door.access", "data": {"granted": False}}, t)
    assert (tap["kind_id"], tap["record"], tap["id"]) == ("door.access", None, "gw1:8")
