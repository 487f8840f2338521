"""A real camera for tests: ffmpeg's test pattern as HTTP MJPEG, recorded by Motion (Debian's
``motion``) as the NVR, with digest auth on its stream port (the still: ``/1/current``) and its
web control (``/1/action/eventstart``). REFERENCES.md section 5 has the command lines.

ffmpeg's ``-listen 1`` serves one client and exits when it goes; Motion opens the stream more
than once, so ffmpeg is restarted in a loop (a camera that reboots between clients). Everything
runs in one process group of ours, stopped by its id.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import free_port, require_binary, unavailable, wait_until

USER = "secroom"
PASSWORD = "cam-pass-for-tests"  # noqa: S105 - a test camera's


@dataclass
class MotionCamera:
    root: Path
    camera_port: int
    control_port: int
    stream_port: int
    _procs: list[subprocess.Popen[bytes]]

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    @property
    def snapshot_url(self) -> str:
        return f"http://127.0.0.1:{self.stream_port}/1/current"

    @property
    def password_file(self) -> Path:
        return self.root / "camera.pass"

    def still(self) -> bytes:
        r = httpx.get(self.snapshot_url, auth=httpx.DigestAuth(USER, PASSWORD), timeout=5)
        r.raise_for_status()
        return r.content

    def stop(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self._procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)

    def log(self) -> str:
        path = self.root / "motion.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def _ready(cam: MotionCamera) -> bool:
    try:
        return cam.still().startswith(b"\xff\xd8")
    except httpx.HTTPError:
        return False


def start_motion_camera(root: Path, timeout: float = 60.0) -> MotionCamera:
    ffmpeg = require_binary("ffmpeg")
    motion = require_binary("motion")
    root.mkdir(parents=True, exist_ok=True)
    cam_port, control, stream = free_port(), free_port(), free_port()
    source = f"http://127.0.0.1:{cam_port}/stream.mjpg"
    loop = (f"while :; do {ffmpeg} -hide_banner -loglevel error -re -f lavfi "
            "-i testsrc2=size=320x240:rate=5 -f mpjpeg -q:v 5 "
            "-content_type 'multipart/x-mixed-replace;boundary=ffmpeg' "
            f"-listen 1 {source}; done")
    (root / "camera.pass").write_text(PASSWORD + "\n")
    conf = root / "motion.conf"
    conf.write_text("\n".join([
        "daemon off", "log_level 5", f"log_file {root / 'motion.log'}",
        f"target_dir {root / 'recordings'}", "camera_id 1", f"netcam_url {source}",
        "width 320", "height 240", "framerate 5", "movie_output on", "movie_codec mkv",
        "picture_output off", "pre_capture 5", "post_capture 5", "event_gap 5",
        f"stream_port {stream}", "stream_localhost on", "stream_auth_method 2",
        f"stream_authentication {USER}:{PASSWORD}",
        f"webcontrol_port {control}", "webcontrol_localhost on", "webcontrol_auth_method 2",
        f"webcontrol_authentication {USER}:{PASSWORD}", "webcontrol_parms 2", ""]))
    with open(root / "ffmpeg.log", "wb") as errors:  # the child keeps its own copy
        procs = [
            subprocess.Popen(["sh", "-c", loop], stdout=subprocess.DEVNULL, stderr=errors,
                             start_new_session=True),
            subprocess.Popen([motion, "-n", "-c", str(conf)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True),
        ]
    cam = MotionCamera(root, cam_port, control, stream, procs)
    try:
        wait_until(lambda: _ready(cam), timeout, "Motion to serve a still", step=0.2)
    except TimeoutError:
        log = cam.log()
        cam.stop()
        unavailable(f"Motion gave no still within {timeout}s: {log[-500:]}")
    return cam


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
