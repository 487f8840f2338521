"""camera.still and camera.failed: the signed half of a still (its image goes to the dashboard by
an authenticated upload, never over MQTT)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from controller.camera.types import FailReason

KIND_STILL = "camera.still"
KIND_FAILED = "camera.failed"

_CFG = ConfigDict(extra="forbid", frozen=True)
EventId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}:[0-9]{1,19}$")]


class CameraStill(BaseModel):
    """A still taken for the record ``record`` (its event id "node:seq"): the image's SHA-256
    and size seal it; ``clip`` links to the NVR's recording of the seconds around it."""

    model_config = _CFG

    camera: str = Field(min_length=1, max_length=64)
    target: str = Field(min_length=1, max_length=80)  # "door:<id>" or "printer:<name>"
    record: EventId
    record_kind: str = Field(max_length=64)
    door: str | None = Field(default=None, max_length=64)  # the door, for the door log
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1)
    content_type: Literal["image/jpeg"] = "image/jpeg"
    clip: str | None = Field(default=None, max_length=500)
    clip_error: str | None = Field(default=None, max_length=40)  # the NVR refused to keep it


class CameraFailed(BaseModel):
    """No still for the record: the camera hung, refused, or sent something else."""

    model_config = _CFG

    camera: str = Field(min_length=1, max_length=64)
    target: str = Field(min_length=1, max_length=80)
    record: EventId | None = None
    record_kind: str = Field(default="", max_length=64)
    door: str | None = Field(default=None, max_length=64)
    reason: FailReason
    detail: str = Field(default="", max_length=200)


KIND_SET_ASIDE = "camera.set_aside"


class CameraSetAside(BaseModel):
    """A still the dashboard refuses for good (the key that signed it was revoked): the gateway
    keeps it aside in its spool, sealed, and stops sending it. ``record``, ``camera`` and
    ``door`` are those of the still (None for a still spooled before the spool kept them)."""

    model_config = _CFG

    still: EventId
    record: EventId | None = None
    camera: str | None = Field(default=None, max_length=64)
    door: str | None = Field(default=None, max_length=64)
    reason: Literal["key_revoked"] = "key_revoked"
