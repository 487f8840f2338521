"""The gateway's own nightly backup, for the single box (a systemd timer does it otherwise).

Each run is a child process (`secroom backup run`, then `prune`): a crash or an out-of-memory
kill of the backup cannot take the door down, and a killed run leaves a valid repository (the
backup engine's write order guarantees it) that the next night completes. The child runs as its
own node ("<gateway>.backup"), so its events have their own journal and sequence.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from backup.config import BackupConfig
from backup.schedule import next_run

log = logging.getLogger(__name__)

CHILD_STOP_S = 30.0  # a backup run asked to stop gets this long before it is killed


class BackupScheduler:
    def __init__(
        self,
        config_path: Path,
        backup: BackupConfig,
        *,
        clock: Callable[[], datetime],
        run: Callable[[list[str]], int] | None = None,
    ) -> None:
        self.config_path = config_path
        self.backup = backup
        self.clock = clock
        self._run = run or self._run_child
        self._stop = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self._child_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.last_exit: int | None = None

    def commands(self) -> list[list[str]]:
        base = [sys.executable, "-m", "controller.cli", "backup"]
        cfg = ["--config", str(self.config_path)]
        return [[*base, "run", *cfg], [*base, "prune", *cfg]]  # prune: the config's retention

    def run_once(self) -> int:
        """Back up now, then apply retention; the exit code of the first step that failed."""
        self.runs += 1
        for command in self.commands():
            code = self._run(command)
            if code != 0:
                log.error("nightly backup step %s exited with %d", command[4], code)
                self.last_exit = code
                return code
        self.last_exit = 0
        return 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="backup-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling; a run under way is ended (SIGTERM, then SIGKILL after
        ``CHILD_STOP_S``): the gateway leaves no process behind, and the killed run leaves a
        valid repository that the next night completes."""
        with self._child_lock:
            self._stop.set()
            child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(CHILD_STOP_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self._thread:
            self._thread.join(5)

    def _loop(self) -> None:
        while True:
            now = self.clock()
            due = next_run(now, self.backup.schedule, self.backup.timezone)
            if self._stop.wait((due - now).total_seconds()):
                return
            self.run_once()

    def _run_child(self, command: list[str]) -> int:
        with self._child_lock:
            if self._stop.is_set():
                return -signal.SIGTERM
            self._child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        try:
            return self._child.wait()
        finally:
            with self._child_lock:
                self._child = None
