"""The camera adapters against real servers: Motion (recording ffmpeg's test pattern) for the
snapshot URL with digest auth and its web control API; a socket that never answers for the
bound on a hanging camera; Frigate's documented HTTP API (v0.17, frigate/api/event.py and
media.py) served by a small stand-in, since Frigate itself cannot run here."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from controller.camera.http import FrigateNvr, MotionNvr, SnapshotCamera
from controller.camera.settings import CameraConfig
from controller.camera.types import CameraError
from tests.controller.camera.conftest import camera_config, write_password
from tests.support.camera import MotionCamera

pytestmark = pytest.mark.integration


def test_snapshot_url_with_digest_auth_gives_a_jpeg(motion: MotionCamera) -> None:
    cam = SnapshotCamera(CameraConfig.model_validate(
        camera_config(motion, adapter="http", url=motion.snapshot_url)))
    try:
        still = cam.snapshot(10)
    finally:
        cam.close()
    assert still.image[:3] == b"\xff\xd8\xff" and len(still.image) > 1000


def test_wrong_password_is_an_auth_failure(motion: MotionCamera, tmp_path: Path) -> None:
    cfg = camera_config(motion, adapter="http", url=motion.snapshot_url,
                        password_file=str(write_password(tmp_path, "nope")))
    cam = SnapshotCamera(CameraConfig.model_validate(cfg))
    with pytest.raises(CameraError) as err:
        cam.snapshot(10)
    cam.close()
    assert err.value.reason == "auth"


def test_motion_keeps_a_clip_through_its_web_control(motion: MotionCamera) -> None:
    cfg = CameraConfig.model_validate(camera_config(
        motion, clip_url="https://nvr.example/clips/{camera}/{start}-{end}.mkv"))
    nvr = MotionNvr(cfg)
    at = datetime(2026, 12, 7, 2, 13, tzinfo=UTC)
    try:
        assert nvr.snapshot(10).image.startswith(b"\xff\xd8")
        link = nvr.keep_clip("gw1:42", at, 5, 1, 10)
    finally:
        nvr.close()
    start = int(at.timestamp()) - 5
    assert link == f"https://nvr.example/clips/1/{start}-{start + 6}.mkv"


def test_motion_web_control_refuses_a_wrong_password(motion: MotionCamera,
                                                     tmp_path: Path) -> None:
    cfg = CameraConfig.model_validate(camera_config(
        motion, password_file=str(write_password(tmp_path, "nope"))))
    nvr = MotionNvr(cfg)
    with pytest.raises(CameraError) as err:
        nvr.keep_clip("gw1:42", datetime.now(UTC), 5, 1, 10)
    nvr.close()
    assert err.value.reason == "auth"


def test_a_hanging_camera_is_given_up_after_the_timeout(hanging_camera: str) -> None:
    cam = SnapshotCamera(CameraConfig(id="hung", adapter="http", url=hanging_camera))
    with pytest.raises(CameraError) as err:
        cam.snapshot(0.5)
    cam.close()
    assert err.value.reason == "timeout"


class _Frigate(BaseHTTPRequestHandler):
    """Frigate 0.17's documented endpoints the adapter uses, with its log-in cookie."""

    created: list[tuple[str, dict[str, Any]]] = []
    token = "t0k"  # noqa: S105 - the session Frigate accepts now (changed: it expired)
    logins = 0
    jpeg = b"\xff\xd8\xff\xe0" + b"frigate-still" * 50

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str, cookie: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(body)

    def _authed(self) -> bool:
        return f"frigate_token={self.token}" in self.headers.get("Cookie", "")

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        if self.path == "/api/login":
            ok = body == {"user": "secroom", "password": "fpass"}
            type(self).logins += ok
            self._send(200 if ok else 401, b"{}", "application/json",
                       f"frigate_token={self.token}; Path=/" if ok else "")
        elif self.path == "/api/events/front/secroom/create" and self._authed():
            type(self).created.append((self.path, body))
            self._send(200, json.dumps({"success": True, "message": "Successfully created event.",
                                        "event_id": "1733537580.0-abc123"}).encode(),
                       "application/json")
        else:
            self._send(401, b"{}", "application/json")

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/api/front/latest.jpg" and self._authed():
            self._send(200, self.jpeg, "image/jpeg")
        else:
            self._send(401, b"{}", "application/json")


@pytest.fixture
def frigate() -> Iterator[str]:
    _Frigate.created, _Frigate.token, _Frigate.logins = [], "t0k", 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Frigate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_frigate_event_with_the_record_as_sub_label(frigate: str, tmp_path: Path) -> None:
    (tmp_path / "f.pass").write_text("fpass\n")
    nvr = FrigateNvr(CameraConfig(id="front-cam", adapter="frigate", url=frigate,
                                  frigate_camera="front", username="secroom",
                                  password_file=tmp_path / "f.pass"))
    at = datetime(2026, 12, 7, 2, 13, tzinfo=UTC)
    try:
        assert nvr.snapshot(5).image == _Frigate.jpeg
        _Frigate.token = "t1k"  # noqa: S105 - expired: the adapter logs in again, once
        link = nvr.keep_clip("gw1:42", at, 10, 20, 5)
    finally:
        nvr.close()
    assert _Frigate.logins == 2
    (path, body), = _Frigate.created
    assert body["sub_label"] == "gw1:42" and body["duration"] == 30
    assert body["include_recording"] is True
    start = int(at.timestamp()) - 10
    assert link == f"{frigate}/api/front/start/{start}/end/{start + 30}/clip.mp4"


def test_frigate_refusing_the_login_is_an_auth_failure(frigate: str, tmp_path: Path) -> None:
    (tmp_path / "f.pass").write_text("wrong\n")
    nvr = FrigateNvr(CameraConfig(id="front-cam", adapter="frigate", url=frigate,
                                  frigate_camera="front", username="secroom",
                                  password_file=tmp_path / "f.pass"))
    with pytest.raises(CameraError) as err:
        nvr.snapshot(5)
    nvr.close()
    assert err.value.reason == "auth"
