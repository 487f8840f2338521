"""``[cameras]``: the cameras (and NVRs), what each films, and where stills are uploaded.

    [cameras]
    upload_url = "https://dashboard.example/api/camera/stills"
    [[cameras.camera]]
    id = "door-cam"
    adapter = "motion"            # "http" | "motion" | "frigate" | "none"
    url = "http://127.0.0.1:8081" # motion: web control; http: the snapshot URL; frigate: its API
    snapshot_url = "http://127.0.0.1:8082/1/current"  # motion: the stream port's still
    username = "secroom"
    password_file = "/etc/secroom/camera.pass"
    [[cameras.watch]]
    target = "door:server-room"   # door:<id> (racks are doors), printer:<name>
    camera = "door-cam"
    events = ["door.access.denied", "door.forced"]
    pre_s = 10
    post_s = 20
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Trigger = Literal["door.access.granted", "door.access.denied", "door.forced", "door.held_open",
                  "door.two_person", "door.lockdown", "print.release"]
ALL_TRIGGERS: tuple[Trigger, ...] = ("door.access.granted", "door.access.denied", "door.forced",
                                     "door.held_open", "door.two_person", "door.lockdown",
                                     "print.release")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraConfig(_Strict):
    """One camera or NVR."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    adapter: Literal["http", "motion", "frigate", "none"]
    url: str | None = None
    snapshot_url: str | None = None  # motion: its stream port's /<cam>/current
    auth: Literal["digest", "basic", "none"] = "digest"
    username: str | None = None
    password_file: Path | None = None  # never inline: the secret stays out of config and logs
    motion_camera: int = Field(default=1, ge=0)  # motion: the camera id in its URLs
    frigate_camera: str | None = None  # frigate: the camera's name in Frigate
    clip_url: str | None = None  # motion: a link template, {camera} {start} {end} (epoch s)
    ca_file: Path | None = None  # https to the camera with a private CA

    @model_validator(mode="after")
    def _adapter_needs(self) -> CameraConfig:
        if self.adapter == "http" and not self.url:
            raise ValueError(f"camera {self.id}: adapter http needs url (its snapshot URL)")
        if self.adapter == "motion" and not (self.url and self.snapshot_url):
            raise ValueError(f"camera {self.id}: adapter motion needs url (web control) "
                             "and snapshot_url (stream port's /<camera>/current)")
        if self.adapter == "frigate" and not (self.url and self.frigate_camera):
            raise ValueError(f"camera {self.id}: adapter frigate needs url and frigate_camera")
        if self.username and not self.password_file:
            raise ValueError(f"camera {self.id}: username without password_file")
        return self


class WatchConfig(_Strict):
    """What a camera films: a door (or rack) or printer, and which of its events."""

    target: str = Field(pattern=r"^(door|printer):[^\s]{1,64}$")
    camera: str
    events: list[Trigger] = Field(default_factory=lambda: list(ALL_TRIGGERS), min_length=1)
    pre_s: int = Field(default=10, ge=0, le=600)
    post_s: int = Field(default=20, ge=0, le=600)


class CameraSettings(_Strict):
    """Cameras: a still of each watched event, sealed in a signed camera.still event and
    uploaded to the dashboard by the node (never over MQTT)."""

    upload_url: str | None = None  # the dashboard's /api/camera/stills; None: stills stay spooled
    upload_ca_file: Path | None = None
    spool_dir: Path | None = None  # default data_dir/camera-spool
    timeout_s: float = Field(default=3.0, gt=0, le=30)  # one snapshot, one NVR call
    queue: int = Field(default=32, ge=1, le=1000)  # waiting events; beyond: counted, dropped
    retry_s: float = Field(default=30.0, gt=0)  # spooled uploads are retried this often
    camera: list[CameraConfig] = []
    watch: list[WatchConfig] = []

    @model_validator(mode="after")
    def _watch_known_cameras(self) -> CameraSettings:
        ids = [c.id for c in self.camera]
        if len(set(ids)) != len(ids):
            raise ValueError("camera ids must be unique")
        for w in self.watch:
            if w.camera not in ids:
                raise ValueError(f"watch {w.target} names camera {w.camera!r}, not in "
                                 "[[cameras.camera]]")
        return self
