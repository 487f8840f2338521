"""Configuration of the printing feature on one gateway node."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

ReleaseMode = Literal["all", "newest", "oldest"]


class PrintSettings(BaseModel, extra="forbid"):
    """Printing settings, validated once at start.

    ``printers`` are the room's hold queues (the names clients print to and printer-role readers
    are bound to). Each is kept stopped by CUPS so every job waits; a release moves the job to the
    queue's release queue (``release_queues[name]``, default ``"{name}-release"``), which is
    enabled, not shared and refuses direct submissions (see hardware/cups/README.md).
    """

    printers: list[str] = Field(default_factory=list)
    release_queues: dict[str, str] = Field(default_factory=dict)
    hold_hours: float = Field(default=4.0, gt=0, le=24 * 30)
    release_mode: ReleaseMode = "all"
    redact_titles: bool = True
    require_presence: bool = False
    cups_host: str = "localhost"
    cups_port: int = Field(default=631, ge=1, le=65535)
    cups_user: str | None = None
    cups_password_file: Path | None = None
    # libcups reads the root Local certificate from $CUPS_STATEDIR/certs/0 (root only).
    cups_state_dir: Path | None = None
    cups_timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _check_queues(self) -> PrintSettings:
        unknown = sorted(set(self.release_queues) - set(self.printers))
        if unknown:
            raise ValueError(f"release_queues names queues that are not in printers: {unknown}")
        if len(set(self.printers)) != len(self.printers):
            raise ValueError("printers lists a queue twice")
        clash = set(self.printers) & {self.release_queue(p) for p in self.printers}
        if clash:
            raise ValueError(f"a release queue cannot also be a hold queue: {sorted(clash)}")
        return self

    def release_queue(self, printer: str) -> str:
        return self.release_queues.get(printer, f"{printer}-release")


def staging_queue(printer: str) -> str:
    """The stopped queue a release parks all but the first job on before moving them to the
    release queue in one request (controller/printing/service.py, hardware/cups/README.md)."""
    return f"{printer}-staging"
