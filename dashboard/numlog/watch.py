"""A watched drop folder: CSV files put there are imported, then moved to done/ or failed/.

Polling (no inotify dependency; works on NAS mounts). A file is taken only once its size and
mtime have not changed for ``settle_s`` (a copy still in progress is left alone); names ending in
.part/.tmp or starting with '.' are ignored. Each processed file gets a ``<name>.result.json``
next to it in done/ or failed/ (counts and the bad lines, never a value).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from controller.numguard import redact
from dashboard.correlation.engine import Correlator
from dashboard.numlog.parse import NumlogError
from dashboard.numlog.service import import_csv

IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".result.json")


def _lexists(name: str, dir_fd: int) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


@dataclass
class DropFolder:
    path: Path
    source: str
    sessions: sessionmaker[Session]
    zone: ZoneInfo
    clock: Callable[[], datetime]
    preset: str | None = None
    settle_s: float = 2.0
    correlator: Correlator | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"done": 0, "failed": 0})
    _seen: dict[str, tuple[int, float, datetime]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for sub in ("done", "failed"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    def candidates(self) -> list[Path]:
        # symlinks are never taken: the export account could point one at any file we can read
        return sorted(p for p in self.path.iterdir() if not p.is_symlink() and p.is_file()
                      and not p.name.startswith(".") and not p.name.endswith(IGNORED_SUFFIXES))

    def _settled(self, p: Path, now: datetime) -> bool:
        st = p.stat()
        sig = (st.st_size, st.st_mtime)
        prev = self._seen.get(p.name)
        if prev is None or prev[:2] != sig:
            self._seen[p.name] = (*sig, now)
            return self.settle_s <= 0
        return (now - prev[2]).total_seconds() >= self.settle_s

    def scan_once(self) -> list[dict[str, Any]]:
        """Import every settled file; returns one summary per file moved."""
        out = []
        for p in self.candidates():
            now = self.clock()
            if not self._settled(p, now):
                continue
            self._seen.pop(p.name, None)
            out.append(self._import(p, now))
        return out

    def _import(self, p: Path, now: datetime) -> dict[str, Any]:
        summary: dict[str, Any]
        try:
            with os.fdopen(os.open(p, os.O_RDONLY | os.O_NOFOLLOW), "rb") as fh:
                data = fh.read()
            with self.sessions() as session:
                report = import_csv(session, data, source=self.source, now=now, zone=self.zone,
                                    actor="dropfolder", filename=p.name, preset=self.preset,
                                    correlator=self.correlator)
                session.commit()
            summary = {"status": "done", **report.as_dict()}
        except (NumlogError, OSError) as exc:
            summary = {"status": "failed", "error": redact(str(exc)).text}
        # done/ and failed/ are opened without following a link (the export account can write
        # the drop folder and could swap them, or a note's name, for a symlink to any file)
        box = self.path / summary["status"]
        if box.is_symlink():
            box.unlink()
        box.mkdir(exist_ok=True)
        dir_fd = os.open(box, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            name, n = p.name, 1
            while _lexists(name, dir_fd) or _lexists(name + ".result.json", dir_fd):
                name = f"{p.stem}.{n}{p.suffix}"
                n += 1
            os.rename(p, name, dst_dir_fd=dir_fd)
            summary["file"] = redact(name).text
            note = os.open(name + ".result.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL
                           | os.O_NOFOLLOW, 0o640, dir_fd=dir_fd)
            with os.fdopen(note, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
        finally:
            os.close(dir_fd)
        self.counts[summary["status"]] += 1
        return summary

    def run(self, stop: threading.Event, interval_s: float = 5.0) -> None:
        """Poll until ``stop`` is set."""
        self.scan_once()
        while not stop.wait(interval_s):
            self.scan_once()
