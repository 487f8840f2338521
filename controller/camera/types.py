"""The camera protocol: take a still now, ask an NVR to keep a clip. Adapters raise CameraError."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

FailReason = Literal["timeout", "unreachable", "auth", "http_error", "not_an_image", "too_large",
                     "queue_full"]

JPEG_MAGIC = b"\xff\xd8\xff"
MAX_STILL_BYTES = 8 * 1024 * 1024


class CameraError(Exception):
    """A camera or NVR did not give what was asked; ``reason`` is one of FailReason."""

    def __init__(self, reason: FailReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: FailReason = reason
        self.detail = detail[:200]


@dataclass(frozen=True, slots=True)
class Still:
    image: bytes
    content_type: str = "image/jpeg"


class Camera(Protocol):
    """One camera. ``snapshot`` returns a JPEG within ``timeout_s`` or raises CameraError;
    ``keep_clip`` asks the recorder to keep ``pre_s`` .. ``post_s`` around ``at`` under
    ``record_id`` and returns a link to the clip (None: this camera records nothing)."""

    name: str

    def snapshot(self, timeout_s: float) -> Still: ...

    def keep_clip(self, record_id: str, at: datetime, pre_s: int, post_s: int,
                  timeout_s: float) -> str | None: ...

    def close(self) -> None: ...


def check_image(body: bytes, content_type: str) -> Still:
    """A JPEG as cameras send it, or CameraError("not_an_image")."""
    if not body.startswith(JPEG_MAGIC):
        raise CameraError("not_an_image", f"{len(body)} bytes of {content_type or 'unknown type'}")
    return Still(body, "image/jpeg")
