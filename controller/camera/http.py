"""Camera adapters over HTTP (the only module here that imports httpx).

- ``SnapshotCamera``: a plain IP camera's snapshot URL (ONVIF GetSnapshotUri gives it; Axis
  /axis-cgi/jpg/image.cgi, Hikvision /ISAPI/Streaming/channels/101/picture...), HTTP digest
  auth by default. It records nothing: ``keep_clip`` returns None.
- ``MotionNvr``: Motion (motion-project.github.io, 4.5 as in Debian 12) recording the camera:
  the still from its stream port (``/<cam>/current``), the clip kept by its web control API
  (``/<cam>/action/eventstart``, then ``eventend`` after ``post_s``); Motion's own
  ``pre_capture`` covers the seconds before. Its web control has no clip URL: ``clip_url`` is the
  site's link template to the recordings.
- ``FrigateNvr``: Frigate's HTTP API as documented for v0.17 (frigate/api/event.py, media.py):
  ``POST /api/events/{camera}/secroom/create`` with the record's id as ``sub_label`` keeps the
  recording, ``GET /api/{camera}/latest.jpg`` is the still, the clip is
  ``/api/{camera}/start/{s}/end/{e}/clip.mp4``; ``POST /api/login`` when a user is configured
  (the authenticated port 8971).

Every call is bounded by ``timeout_s`` as a whole (connect, each read, and the body's total).
httpx's exceptions become CameraError here, raised from the original.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import httpx

from controller.camera.settings import CameraConfig
from controller.camera.types import MAX_STILL_BYTES, CameraError, Still, check_image

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    content_type: str
    body: bytes


def _secret(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CameraError("auth", f"password file {path} cannot be read") from exc


class _Http:
    """One httpx client per camera; GETs bounded as a whole and capped in size."""

    def __init__(self, config: CameraConfig) -> None:
        self.name = config.id
        password = _secret(config.password_file)
        auth: httpx.Auth | None = None
        if config.username and password is not None and config.auth != "none":
            auth = (httpx.DigestAuth(config.username, password) if config.auth == "digest"
                    else httpx.BasicAuth(config.username, password))
        self._client = httpx.Client(auth=auth, verify=str(config.ca_file) if config.ca_file
                                    else True, follow_redirects=False, trust_env=False)

    def request(self, method: str, url: str, timeout_s: float, *, max_bytes: int = MAX_STILL_BYTES,
                body: object = None) -> Reply:
        deadline = time.monotonic() + timeout_s
        try:
            with self._client.stream(method, url, json=body,
                                     timeout=httpx.Timeout(timeout_s)) as resp:
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise CameraError("too_large", f"over {max_bytes} bytes from {self.name}")
                    if time.monotonic() > deadline:
                        raise CameraError("timeout", f"{self.name}: body not done in {timeout_s}s")
                reply = Reply(resp.status_code, resp.headers.get("content-type", ""), bytes(body))
        except httpx.TimeoutException as exc:
            raise CameraError("timeout", f"{self.name}: no answer in {timeout_s}s") from exc
        except httpx.HTTPError as exc:
            raise CameraError("unreachable", f"{self.name}: {type(exc).__name__}") from exc
        if reply.status in (401, 403):
            raise CameraError("auth", f"{self.name} refused the credentials ({reply.status})")
        if reply.status >= 300:
            raise CameraError("http_error", f"{self.name} answered {reply.status}")
        return reply

    def snapshot_from(self, url: str, timeout_s: float) -> Still:
        reply = self.request("GET", url, timeout_s)
        return check_image(reply.body, reply.content_type)

    def close(self) -> None:
        self._client.close()


class SnapshotCamera(_Http):
    def __init__(self, config: CameraConfig) -> None:
        super().__init__(config)
        assert config.url is not None
        self._url = config.url

    def snapshot(self, timeout_s: float) -> Still:
        return self.snapshot_from(self._url, timeout_s)

    def keep_clip(self, record_id: str, at: datetime, pre_s: int, post_s: int,
                  timeout_s: float) -> str | None:
        return None


class MotionNvr(_Http):
    def __init__(self, config: CameraConfig) -> None:
        super().__init__(config)
        assert config.url is not None and config.snapshot_url is not None
        self._control = config.url.rstrip("/") + f"/{config.motion_camera}/action/"
        self._snapshot = config.snapshot_url
        self._clip_url = config.clip_url
        self._camera = config.motion_camera
        self._timers: list[threading.Timer] = []

    def snapshot(self, timeout_s: float) -> Still:
        return self.snapshot_from(self._snapshot, timeout_s)

    def keep_clip(self, record_id: str, at: datetime, pre_s: int, post_s: int,
                  timeout_s: float) -> str | None:
        self.request("GET", self._control + "eventstart", timeout_s, max_bytes=65536)
        timer = threading.Timer(post_s, self._end, args=(timeout_s,))
        timer.daemon = True
        timer.start()
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        if self._clip_url is None:
            return None
        start = int(at.timestamp()) - pre_s
        return self._clip_url.format(camera=self._camera, start=start, end=start + pre_s + post_s)

    def _end(self, timeout_s: float) -> None:
        with contextlib.suppress(CameraError):  # Motion ends the event itself after event_gap
            self.request("GET", self._control + "eventend", timeout_s, max_bytes=65536)

    def close(self) -> None:
        for t in self._timers:
            t.cancel()
        super().close()


class FrigateNvr(_Http):
    LABEL = "secroom"

    def __init__(self, config: CameraConfig) -> None:
        self._user = config.username
        self._password = _secret(config.password_file)
        cfg = config.model_copy(update={"auth": "none"})  # Frigate: a log-in, not HTTP auth
        super().__init__(cfg)
        assert config.url is not None and config.frigate_camera is not None
        self._base = config.url.rstrip("/")
        self._camera = config.frigate_camera
        self._logged_in = False

    def _login(self, timeout_s: float) -> None:
        if self._user and not self._logged_in:
            self.request("POST", f"{self._base}/api/login", timeout_s, max_bytes=65536,
                         body={"user": self._user, "password": self._password})
            self._logged_in = True

    def _logged(self, call: Callable[[], T], timeout_s: float) -> T:
        """``call`` after a log-in; once more after a fresh one if the session expired."""
        self._login(timeout_s)
        try:
            return call()
        except CameraError as exc:
            if exc.reason != "auth" or not self._user:
                raise
            self._logged_in = False
            self._login(timeout_s)
            return call()

    def snapshot(self, timeout_s: float) -> Still:
        url = f"{self._base}/api/{self._camera}/latest.jpg"
        return self._logged(lambda: self.snapshot_from(url, timeout_s), timeout_s)

    def keep_clip(self, record_id: str, at: datetime, pre_s: int, post_s: int,
                  timeout_s: float) -> str | None:
        resp = self._logged(lambda: self._create(record_id, pre_s + post_s, timeout_s),
                            timeout_s)
        try:
            answer = json.loads(resp.body)
            ok = isinstance(answer, dict) and answer.get("success") is True
        except ValueError:
            ok = False
        if not ok:
            raise CameraError("http_error", f"{self.name}: Frigate did not create the event")
        start = int(at.timestamp()) - pre_s
        end = start + pre_s + post_s
        return f"{self._base}/api/{self._camera}/start/{start}/end/{end}/clip.mp4"

    def _create(self, record_id: str, duration: int, timeout_s: float) -> Reply:
        return self.request(
            "POST", f"{self._base}/api/events/{self._camera}/{self.LABEL}/create", timeout_s,
            max_bytes=65536,
            body={"sub_label": record_id, "score": 0, "duration": duration,
                  "include_recording": True, "draw": {}})


class NoCamera:
    """adapter = "none": configured on purpose to film nothing; never called by the service."""

    def __init__(self, config: CameraConfig) -> None:
        self.name = config.id

    def snapshot(self, timeout_s: float) -> Still:
        raise CameraError("unreachable", f"{self.name} is configured as none")

    def keep_clip(self, record_id: str, at: datetime, pre_s: int, post_s: int,
                  timeout_s: float) -> str | None:
        return None

    def close(self) -> None:
        pass


def build_camera(config: CameraConfig) -> SnapshotCamera | MotionNvr | FrigateNvr | NoCamera:
    if config.adapter == "http":
        return SnapshotCamera(config)
    if config.adapter == "motion":
        return MotionNvr(config)
    if config.adapter == "frigate":
        return FrigateNvr(config)
    return NoCamera(config)
