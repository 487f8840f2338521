from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.web.conftest import webapp  # noqa: F401 - the dashboard app (rotation)
from tests.support.camera import MotionCamera, start_motion_camera


@pytest.fixture(scope="session")
def motion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotionCamera]:
    """ffmpeg's test pattern recorded by a real Motion (one per run: it takes seconds)."""
    cam = start_motion_camera(tmp_path_factory.mktemp("motion"))
    try:
        yield cam
    finally:
        cam.stop()


@pytest.fixture
def hanging_camera() -> Iterator[str]:
    """A camera that accepts the connection and never answers (a real socket, never read)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/snapshot.jpg"


def camera_config(cam: MotionCamera, **overrides: object) -> dict[str, object]:
    return {"id": "door-cam", "adapter": "motion", "url": cam.control_url,
            "snapshot_url": cam.snapshot_url, "username": "secroom",
            "password_file": str(cam.password_file), **overrides}


def write_password(root: Path, text: str) -> Path:
    path = root / "wrong.pass"
    path.write_text(text)
    return path
