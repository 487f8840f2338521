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
