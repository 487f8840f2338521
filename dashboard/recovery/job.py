"""The dashboard's nightly database backup: copy the database consistently, stage it with the
config and the sealed secrets (bundle.py), and write it as a snapshot tagged "dashboard" into
the room's repository, with the operators' public key only (the dashboard cannot read it back).

Each run is recorded in ``database_backups``; a failed one also raises a
``database_backup_failed`` review item. ``secroom dashboard backup`` runs it once (a systemd
timer, or by hand); the running dashboard runs it every night at ``[dashboard.backup] schedule``
as a child process (``NightlyDatabaseBackup``), so a crash or an out-of-memory kill of the
backup cannot take the ingest down.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backup.cli import open_for_writing
from backup.errors import BackupError, LockedError
from backup.run import RunOptions, backup
from backup.schedule import next_run
from dashboard.anomalies import raise_anomaly
from dashboard.migrate import current
from dashboard.models.nodes import Node
from dashboard.models.recovery import DatabaseBackup
from dashboard.recovery import bundle
from dashboard.recovery.dump import DumpError, dump
from dashboard.recovery.settings import DatabaseBackupSettings
from dashboard.settings import DashboardSettings

log = logging.getLogger(__name__)
TAG = "dashboard"
STAGING = "secroom-dashboard"
LOCK_RETRY_S = 5.0


class DatabaseBackupError(Exception):
    """The night's database backup failed; ``public`` is safe to store and show."""

    def __init__(self, message: str, public: str) -> None:
        super().__init__(message)
        self.public = public


@dataclass
class Outcome:
    snapshot_id: str
    database_bytes: int
    bytes_stored: int
    repo_bytes: int
    dump_s: float
    duration_s: float
    policy_key: str


def _settings(settings: DashboardSettings) -> DatabaseBackupSettings:
    if settings.backup is None:
        raise DatabaseBackupError("no [dashboard.backup] table in the config",
                                  "not configured")
    return settings.backup


def config_text(settings: DashboardSettings, config_path: Path | None) -> str:
    """The config as the operator wrote it, or (no file: a test, the demo) as the model has it."""
    if config_path is not None:
        return config_path.read_text(encoding="utf-8")
    doc = settings.model_dump(mode="json", exclude_none=True)
    return tomli_w.dumps({"dashboard": doc})


def _nodes(sm: sessionmaker[Session]) -> list[dict[str, Any]]:
    with sm() as db:
        return [{"name": n.name, "key_status": n.key_status, "public_key": n.public_key}
                for n in db.scalars(select(Node).order_by(Node.name))]


def _policy_public(settings: DashboardSettings) -> str | None:
    from controller import keys

    path = settings.policy_key_file
    if path is None or not path.is_file():
        return None
    return keys.public_b64(keys.load_private(path).public_key())


def run_backup(settings: DashboardSettings, sm: sessionmaker[Session], now: datetime, *,
               config_path: Path | None = None,
               stop: threading.Event | None = None) -> Outcome:
    """One database backup; the caller records it (``record``)."""
    cfg = _settings(settings)
    t0 = time.monotonic()
    staging = settings.data_dir / "backup-staging" / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, mode=0o700)
    try:
        repo, public, dedup = open_for_writing(cfg.repository, cfg.public_key_file,
                                               cfg.dedup_key_file)
        copy = dump(settings.database_url, staging)
        dump_s = time.monotonic() - t0
        manifest = bundle.stage(
            staging, settings, config_text=config_text(settings, config_path), dump=copy,
            schema=current(settings.database_url), public_key=public,
            policy_public_key=_policy_public(settings), nodes=_nodes(sm), now=now)
        opts = RunOptions(vault_paths=[staging], public_key=public, dedup_key=dedup,
                          cache_dir=cfg.cache_dir or settings.data_dir / "backup-cache",
                          threads=2, tag=TAG)
        deadline = time.monotonic() + cfg.lock_wait_s
        waiter = stop or threading.Event()  # another process holds the lock: nothing to await
        while True:
            try:
                with repo.locked("dashboard database backup"):
                    res = backup(repo, opts, now)
                break
            except LockedError:  # the gateway's nightly run: wait for it
                if time.monotonic() >= deadline or waiter.wait(LOCK_RETRY_S):
                    raise
    except DumpError as exc:
        raise DatabaseBackupError(str(exc), "the database could not be copied") from exc
    except BackupError as exc:
        raise DatabaseBackupError(str(exc), exc.public) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Outcome(snapshot_id=res.snapshot_id, database_bytes=copy.bytes,
                   bytes_stored=res.bytes_stored, repo_bytes=repo.size(), dump_s=dump_s,
                   duration_s=time.monotonic() - t0, policy_key=manifest["policy_key"])


def record(sm: sessionmaker[Session], started: datetime, outcome: Outcome | None,
           error: DatabaseBackupError | None, now: datetime) -> None:
    with sm.begin() as db:
        if outcome is not None:
            db.add(DatabaseBackup(
                started_at=started, result="ok", snapshot_id=outcome.snapshot_id,
                database_bytes=outcome.database_bytes, bytes_stored=outcome.bytes_stored,
                repo_bytes=outcome.repo_bytes, dump_s=round(outcome.dump_s, 3),
                duration_s=round(outcome.duration_s, 3), policy_key=outcome.policy_key))
            return
        public = error.public if error is not None else "unexpected error"
        db.add(DatabaseBackup(started_at=started, result="failed", database_bytes=0,
                              bytes_stored=0, repo_bytes=0, dump_s=0.0, duration_s=0.0,
                              policy_key="", error=public[:255]))
        raise_anomaly(db, "database_backup_failed", dedupe_key=started.date().isoformat(),
                      now=now, severity="critical",
                      subject="the dashboard's database was not backed up",
                      detail={"error": public[:255]})


class NightlyDatabaseBackup:
    """A runtime part: ``secroom dashboard backup`` as a child process every night."""

    def __init__(self, config_path: Path, cfg: DatabaseBackupSettings, timezone: str, *,
                 clock: Callable[[], datetime]) -> None:
        self.config_path = config_path
        self.cfg = cfg
        self.timezone = timezone
        self.clock = clock
        self.runs = 0
        self.last_exit: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "controller.cli", "dashboard", "backup", "--config",
                str(self.config_path)]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="database-backup", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()  # a killed run leaves a valid repository (backup/FORMAT.md)
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
        if self._thread is not None:
            self._thread.join(5)

    def run_once(self) -> int:
        self.runs += 1
        self._child = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.last_exit = self._child.wait()
        if self.last_exit != 0:
            log.error("the nightly database backup exited with %d", self.last_exit)
        return self.last_exit

    def _loop(self) -> None:
        while True:
            now = self.clock()
            due = next_run(now, self.cfg.schedule, self.timezone)
            if self._stop.wait((due - now).total_seconds()):
                return
            self.run_once()
