"""The gateway's nightly backup: commands, order, and stopping on the first failure."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

from backup.config import BackupConfig
from controller.backup_scheduler import BackupScheduler


def _config(tmp_path: Path) -> BackupConfig:
    return BackupConfig(repository=tmp_path / "repo", vault_paths=[tmp_path / "vault"],
                        public_key_file=tmp_path / "b.pub", dedup_key_file=tmp_path / "dedup",
                        cache_dir=tmp_path / "cache", schedule=time(2, 0))


def test_runs_backup_then_prune_with_the_node_config(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    sched = BackupScheduler(tmp_path / "gw.toml", _config(tmp_path),
                            clock=lambda: datetime(2026, 11, 22, tzinfo=UTC),
                            run=lambda cmd: calls.append(cmd) or 0)
    assert sched.run_once() == 0
    assert [c[3:5] for c in calls] == [["backup", "run"], ["backup", "prune"]]
    assert all(c[-2:] == ["--config", str(tmp_path / "gw.toml")] for c in calls)


def test_a_failed_run_skips_prune_and_is_reported(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def run(cmd: list[str]) -> int:
        calls.append(cmd)
        return 6  # disk full

    sched = BackupScheduler(tmp_path / "gw.toml", _config(tmp_path),
                            clock=lambda: datetime(2026, 11, 22, tzinfo=UTC), run=run)
    assert sched.run_once() == 6
    assert len(calls) == 1 and sched.last_exit == 6


def test_stop_ends_a_backup_run_under_way(tmp_path: Path) -> None:
    """SIGTERM to the gateway stops the scheduler, which ends the backup child it started
    (before, the child outlived the gateway and systemd had to kill it)."""
    import os
    import signal
    import sys
    import threading

    from tests.support import wait_until
    from tests.support.processes import alive, descendants

    started = tmp_path / "started"
    sched = BackupScheduler(tmp_path / "gw.toml", _config(tmp_path),
                            clock=lambda: datetime(2026, 11, 22, tzinfo=UTC))
    child = [sys.executable, "-c",
             f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(300)",
             "backup", "run"]  # argv shaped as the real step's (its log names argv[4])
    sched.commands = lambda: [child]  # type: ignore[method-assign]
    codes: list[int] = []
    before = set(descendants(os.getpid()))  # services earlier tests of the run left going
    runner = threading.Thread(target=lambda: codes.append(sched.run_once()), daemon=True)
    runner.start()
    wait_until(started.exists, 30, "the backup child to start")  # another process: polled
    pids = [pid for pid in descendants(os.getpid()) if pid not in before]
    try:
        assert pids and all(alive(pid) for pid in pids)
        sched.stop()
        runner.join(30)
        assert codes == [-signal.SIGTERM], "the run was ended by SIGTERM, not left to finish"
        assert not [pid for pid in pids if alive(pid)]
    finally:
        for pid in pids:  # on failure, do not leave it behind either
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
