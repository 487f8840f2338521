"""The camera step of a node: an event the config watches becomes a job on a bounded queue, and
one worker thread takes the still, asks the NVR to keep the clip, journals ``camera.still`` (or
``camera.failed``) and uploads the image.

The door's thread only matches the event and puts the job (``put_nowait``): it never waits for a
camera, the network or the dashboard. A full queue drops the job (counted, and reported as
``camera.failed`` with reason "queue_full" when the next job gets in). A still is uploaded at
once and spooled (encrypted) only if the dashboard cannot take it; the spool is retried every
``retry_s``. A still the dashboard refuses for good (the key that signed it was revoked) is set
aside in the spool, counted, journaled as ``camera.set_aside`` (a review item on the dashboard)
and not sent again; the other stills go on. Each camera call is bounded by
``timeout_s``; a camera that hangs delays only the stills queued behind it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from controller.camera.events import (
    KIND_FAILED,
    KIND_SET_ASIDE,
    KIND_STILL,
    CameraFailed,
    CameraSetAside,
    CameraStill,
)
from controller.camera.settings import CameraSettings, Trigger, WatchConfig
from controller.camera.types import Camera, CameraError
from controller.camera.upload import REVOKED, UNREADABLE, KeyRevoked, Spool, Uploader, UploadError

log = logging.getLogger(__name__)

EmitEvent = Callable[[str, BaseModel], Any]  # returns the journaled Event, or None


def triggers_of(kind: str, data: Any) -> tuple[str, list[Trigger], str | None] | None:
    """(target, triggers, door) of an event a camera may watch, or None."""
    if kind == "door.access":
        found: list[Trigger] = ["door.access.granted" if data.granted else "door.access.denied"]
        if data.granted and data.second_person_id:
            found.append("door.two_person")  # a rack (or door) opened by two people
        return f"door:{data.door}", found, data.door
    if kind in ("door.forced", "door.held_open", "door.lockdown"):
        return f"door:{data.door}", [kind], data.door  # type: ignore[list-item]
    if kind == "print.release":
        return f"printer:{data.printer}", ["print.release"], None
    return None


@dataclass(frozen=True, slots=True)
class Job:
    watch: WatchConfig
    record: str
    record_kind: str
    door: str | None
    at: datetime
    dropped: int = 0  # jobs dropped before this one (the queue was full)


class CameraService:
    def __init__(self, settings: CameraSettings, cameras: dict[str, Camera], *,
                 emit: EmitEvent, spool: Spool, uploader: Uploader | None,
                 sign: Callable[[str, bytes], str]) -> None:
        self.settings = settings
        self.cameras = cameras
        self._emit = emit
        self._sign = sign  # by the key that seals the camera.still event (upload.StillSigner)
        self.spool = spool
        self.uploader = uploader
        self._watches: dict[tuple[str, str], list[WatchConfig]] = {}
        for w in settings.watch:
            if next(c for c in settings.camera if c.id == w.camera).adapter == "none":
                continue
            for trig in w.events:
                self._watches.setdefault((w.target, trig), []).append(w)
        self._queue: queue.Queue[Job | None] = queue.Queue(settings.queue)
        self._dropped = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.counters: Counter[str] = Counter()
        self._idle = threading.Condition()

    # -- the door's side: O(1), never blocks ----------------------------------------------------
    def on_event(self, kind: str, data: Any, record: str, at: datetime) -> None:
        if not self._watches:
            return
        found = triggers_of(kind, data)
        if found is None:
            return
        target, trigs, door = found
        seen: set[str] = set()
        for trig in trigs:
            for w in self._watches.get((target, trig), ()):
                if w.camera in seen:
                    continue
                seen.add(w.camera)
                try:
                    self._queue.put_nowait(Job(w, record, kind, door, at, self._dropped))
                    self._dropped = 0
                except queue.Full:
                    self._dropped += 1
                    self.counters["dropped"] += 1

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):  # the worker sees _stop at its next get
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(self.settings.timeout_s * 3 + 5)
        for cam in self.cameras.values():
            cam.close()
        if self.uploader is not None:
            self.uploader.close()

    def wait_idle(self, timeout: float) -> bool:
        """Tests and the benchmark: True once every queued job is done."""
        with self._idle:
            return self._idle.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout)

    def health(self) -> dict[str, int]:
        return {**{k: 0 for k in ("stills", "failed", "dropped", "uploaded", "upload_failed",
                                  "set_aside")},
                **self.counters, "spooled": len(self.spool.waiting()),
                "spool_unreadable": self.spool.set_aside_count(UNREADABLE),
                "spool_revoked": self.spool.set_aside_count(REVOKED)}

    # -- the worker ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._queue.get(timeout=self.settings.retry_s)
            except queue.Empty:
                self.retry_uploads()
                continue
            try:
                if job is not None:
                    self._take(job)
            except Exception:  # a bug must not end the camera step; it is logged and counted
                self.counters["errors"] += 1
                log.exception("camera job for %s failed", job.record if job else "?")
            finally:
                self._queue.task_done()
                with self._idle:
                    self._idle.notify_all()

    def _failed(self, job: Job, reason: str, detail: str) -> None:
        self.counters["failed"] += 1
        self._emit(KIND_FAILED, CameraFailed(
            camera=job.watch.camera, target=job.watch.target, record=job.record,
            record_kind=job.record_kind, door=job.door, reason=reason,  # type: ignore[arg-type]
            detail=detail))

    def _take(self, job: Job) -> None:
        if job.dropped:
            self._failed(job, "queue_full", f"{job.dropped} earlier event(s) got no still")
        cam = self.cameras[job.watch.camera]
        timeout = self.settings.timeout_s
        try:
            still = cam.snapshot(timeout)
        except CameraError as exc:
            self._failed(job, exc.reason, exc.detail)
            return
        clip: str | None = None
        clip_error: str | None = None
        try:
            clip = cam.keep_clip(job.record, job.at, job.watch.pre_s, job.watch.post_s, timeout)
        except CameraError as exc:
            clip_error = exc.reason
        event = self._emit(KIND_STILL, CameraStill(
            camera=cam.name, target=job.watch.target, record=job.record,
            record_kind=job.record_kind, door=job.door,
            sha256=hashlib.sha256(still.image).hexdigest(), size=len(still.image), clip=clip,
            clip_error=clip_error))
        if event is None:
            return  # not journaled (counted by the node): an unsealed image is not kept
        self.counters["stills"] += 1
        # signed now, by the key that sealed the event: a rotation before the upload changes
        # nothing (the dashboard checks it with the key of that seq)
        signature = self._sign(event.id, still.image)
        # uploaded at once; written to the spool (an fsync on the disk the door's journal
        # shares, and SD card wear) only when the dashboard cannot take it now
        about = {"record": job.record, "camera": cam.name, "door": job.door}
        sent = self._upload(event.id, still.image, signature)
        if sent != "uploaded":
            self.spool.put(event.id, still.image, signature, about)
        if sent == "refused":
            self._set_aside(event.id, about)

    def _upload(self, still_id: str, image: bytes, signature: str) -> str:
        """uploaded, later (kept in the spool) or refused (for good: a revoked key)."""
        if self.uploader is None:
            return "later"
        try:
            self.uploader.upload(still_id, image, signature, self.settings.timeout_s * 3)
        except KeyRevoked as exc:
            log.error("still %s is set aside, never sent again: %s", still_id, exc)
            return "refused"
        except UploadError as exc:
            self.counters["upload_failed"] += 1
            log.warning("still %s is spooled for a later upload: %s", still_id, exc)
            return "later"
        self.counters["uploaded"] += 1
        return "uploaded"

    def _set_aside(self, still_id: str, about: dict[str, str | None]) -> None:
        self.spool.set_aside(still_id, REVOKED)
        self.counters["set_aside"] += 1
        try:
            data = CameraSetAside(still=still_id, record=about.get("record"),
                                  camera=about.get("camera"), door=about.get("door"))
        except ValidationError:  # a spooled file's account that does not fit: the still alone
            data = CameraSetAside(still=still_id)
        self._emit(KIND_SET_ASIDE, data)

    def retry_uploads(self) -> None:
        for still_id in self.spool.waiting():
            found = self.spool.get(still_id)
            if found is None:
                continue
            sent = self._upload(still_id, found.image,
                                found.signature or self._sign(still_id, found.image))
            if sent == "later":
                return  # the dashboard is down: try the rest next time
            if sent == "refused":
                self._set_aside(still_id, found.about)
            else:
                self.spool.remove(still_id)
