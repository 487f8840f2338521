"""The camera worker's logic with a recording ``emit`` and loopback HTTP parts: a dashboard that
is down keeps the still spooled (encrypted) until it is back; a full queue is counted and
reported; only watched events of the configured targets take a still."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from controller.camera.http import build_camera
from controller.camera.service import CameraService
from controller.camera.settings import CameraSettings
from controller.camera.upload import (
    HEADER_SIG,
    HEADER_STILL,
    Spool,
    StillSigner,
    Uploader,
    upload_message,
)
from controller.envelope import unb64u
from controller.events import DoorAccess, DoorForced
from controller.keys import generate

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 3000
AT = datetime(2026, 12, 7, 2, 13, tzinfo=UTC)


class Parts(BaseHTTPRequestHandler):
    """GET: the camera (held while ``hold`` is set); POST: the dashboard (503 while ``down``)."""

    down = threading.Event()
    hold = threading.Event()
    released = threading.Event()
    received: list[tuple[dict[str, str], bytes]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.hold.is_set():
            self.released.wait(30)
        self._send(200, JPEG, "image/jpeg")

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.down.is_set():
            self._send(503, b"{}", "application/json")
            return
        type(self).received.append((dict(self.headers), body))
        self._send(201, b"{}", "application/json")


class Recorder:
    """Stands in for the node runtime's emit: numbers events like a journal."""

    def __init__(self) -> None:
        self.events: list[tuple[str, BaseModel, str]] = []

    def __call__(self, kind: str, data: BaseModel) -> Any:
        seq = len(self.events) + 100
        self.events.append((kind, data, f"gw1:{seq}"))
        return type("E", (), {"id": f"gw1:{seq}"})()


@pytest.fixture
def parts() -> Iterator[str]:
    for e in (Parts.down, Parts.hold, Parts.released):
        e.clear()
    Parts.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Parts)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Parts.released.set()
    server.shutdown()
    server.server_close()


def service(tmp_path: Path, url: str, **over: Any) -> tuple[CameraService, Recorder, Any]:
    key = generate(tmp_path / "node.key")
    settings = CameraSettings.model_validate({
        "upload_url": url + "/api/camera/stills", "retry_s": 3600, **over,
        "camera": [{"id": "door-cam", "adapter": "http", "url": url + "/snap.jpg",
                    "auth": "none"}],
        "watch": [{"target": "door:server-room", "camera": "door-cam",
                   "events": ["door.access.denied", "door.forced"]}]})
    rec = Recorder()
    svc = CameraService(settings, {c.id: build_camera(c) for c in settings.camera}, emit=rec,
                        spool=Spool(tmp_path / "spool", key),
                        uploader=Uploader(settings.upload_url or "", "gw1"),
                        sign=StillSigner(key, "gw1"))
    svc.start()
    return svc, rec, key


def denied(door: str = "server-room") -> DoorAccess:
    return DoorAccess(door=door, reader="r", direction="in", granted=False,
                      reason="unknown_card")


def test_a_still_waits_encrypted_while_the_dashboard_is_down(tmp_path: Path, parts: str) -> None:
    svc, rec, key = service(tmp_path, parts)
    try:
        Parts.down.set()
        svc.on_event("door.access", denied(), "gw1:7", AT)
        assert svc.wait_idle(30)
        (kind, _, still_id), = rec.events
        assert kind == "camera.still" and svc.spool.waiting() == [still_id]
        assert JPEG[4:200] not in next(svc.spool.folder.iterdir()).read_bytes()
        Parts.down.clear()
        svc.retry_uploads()
        assert svc.spool.waiting() == []
        (headers, body), = Parts.received
        assert body == JPEG
        key.public_key().verify(unb64u(headers[HEADER_SIG]),
                                upload_message("gw1", still_id, hashlib.sha256(JPEG).hexdigest()))
        assert svc.health()["uploaded"] == 1 and svc.health()["upload_failed"] == 1
    finally:
        svc.stop()


def test_only_watched_events_of_the_target_take_a_still(tmp_path: Path, parts: str) -> None:
    svc, rec, _ = service(tmp_path, parts)
    try:
        svc.on_event("door.access", denied("other-door"), "gw1:1", AT)  # not this target
        svc.on_event("door.access", DoorAccess(door="server-room", reader="r", direction="in",
                                               granted=True, person_id="alice"), "gw1:2", AT)
        svc.on_event("door.forced", DoorForced(door="server-room"), "gw1:3", AT)
        assert svc.wait_idle(30)
        assert [(k, d.record) for k, d, _ in rec.events] == [("camera.still", "gw1:3")]
        assert Parts.received and svc.spool.waiting() == []  # uploaded: nothing written
    finally:
        svc.stop()


def test_a_full_queue_is_counted_and_reported(tmp_path: Path, parts: str) -> None:
    svc, rec, _ = service(tmp_path, parts, queue=1)
    try:
        Parts.hold.set()
        for n in range(1, 6):  # the first is taken by the worker, one waits, the rest drop
            svc.on_event("door.access", denied(), f"gw1:{n}", AT)
        dropped = svc.counters["dropped"]
        assert dropped >= 3
        Parts.hold.clear()
        Parts.released.set()
        assert svc.wait_idle(30)
        assert not any(k == "camera.failed" for k, _, _ in rec.events)
        svc.on_event("door.access", denied(), "gw1:9", AT)  # the next job in reports them
        assert svc.wait_idle(30)
        failed = [d for k, d, _ in rec.events if k == "camera.failed"]
        assert [f.reason for f in failed] == ["queue_full"]
        assert failed[0].detail.startswith(f"{dropped} earlier")
    finally:
        svc.stop()


def test_a_spooled_still_without_its_signature_is_signed_at_upload(tmp_path: Path,
                                                                    parts: str) -> None:
    """A still spooled before the spool kept signatures (the image alone) is signed by the
    current key when it is uploaded; a file that opens under no key is set aside, counted."""
    svc, _, key = service(tmp_path, parts)
    try:
        svc.spool._write("gw1:5", JPEG)  # the earlier format: the image alone
        (svc.spool.folder / "gw1_6.still").write_bytes(b"\x00" * 64)  # opens under no key
        svc.retry_uploads()
        (headers, body), = Parts.received
        assert body == JPEG and headers[HEADER_STILL] == "gw1:5"
        key.public_key().verify(unb64u(headers[HEADER_SIG]),
                                upload_message("gw1", "gw1:5", hashlib.sha256(JPEG).hexdigest()))
        assert svc.spool.waiting() == [] and svc.health()["spool_unreadable"] == 1
        assert (svc.spool.folder / "gw1_6.unreadable").exists()  # kept, not deleted
    finally:
        svc.stop()


def test_the_spool_reads_its_earlier_format_and_keeps_what_a_still_was_taken_for(
        tmp_path: Path) -> None:
    """A file spooled by the previous release (signature + image) still reads; a new one keeps
    the record, camera and door with them (for a still set aside later)."""
    from controller.camera.upload import SIGNED

    key = generate(tmp_path / "node.key")
    spool = Spool(tmp_path / "spool", key)
    sig = StillSigner(key, "gw1")("gw1:5", JPEG)
    spool._write("gw1:5", SIGNED + unb64u(sig) + JPEG)
    spool.put("gw1:6", JPEG, sig, {"record": "gw1:4", "camera": "door-cam", "door": "d1"})
    old, new = spool.get("gw1:5"), spool.get("gw1:6")
    assert old is not None and (old.image, old.signature, old.about) == (JPEG, sig, {})
    assert new is not None and (new.image, new.signature) == (JPEG, sig)
    assert new.about == {"record": "gw1:4", "camera": "door-cam", "door": "d1"}
    spool.set_aside("gw1:6")
    assert spool.waiting() == ["gw1:5"] and spool.set_aside_count("revoked") == 1
