"""Disk full: a clear error and exit code, the repository intact, the next run succeeds."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup import snapshot
from backup.errors import StorageFullError
from backup.repo import Repository
from backup.restore import restore
from backup.verify import verify
from tests.backup.conftest import Env, Recorder, fill_vault, tree_state, write_config


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path | None]:
    """A real 6 MiB tmpfs when we may mount (root); None otherwise."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        yield None
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)],
                          capture_output=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_is_clear_and_safe(env: Env, small_fs: Path | None,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if small_fs is not None:
        env.cfg = env.cfg.model_copy(update={"repository": small_fs / "repo"})
        write_config(env.cfg_file, env.cfg)
    fill_vault(env.vault, files=10, big=0)
    env.run()
    good = set(Repository.open(env.cfg.repository).snapshot_names())
    before = tree_state(env.vault)
    (env.vault / "big.bin").write_bytes(os.urandom(12 << 20))
    if small_fs is None:  # no mount possible: inject ENOSPC at the write layer instead
        real_write = os.write

        def full_write(fd: int, data: bytes) -> int:
            if len(data) > 64 << 10:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", full_write)
    rec = Recorder()
    code = env.cli("run", "--config", str(env.cfg_file), emit=rec)
    monkeypatch.undo()
    assert code == StorageFullError.exit_code
    (kind, data), = rec.events
    assert kind == "backup.failed" and data["error"] == "disk_full"
    assert "no space" in data["message"]
    report = verify(env.cfg.repository)
    assert report.ok, report.problems
    assert set(Repository.open(env.cfg.repository).snapshot_names()) == good
    repo = Repository.open(env.cfg.repository)
    target = env.tmp / "r"
    restore(repo.root, repo.load_index(), env.key,
            snapshot.open_manifest(repo.read_snapshot(next(iter(good))), env.key), target)
    assert tree_state(target / str(env.vault).lstrip("/")) == before
    # free space (grow the file system / stop injecting) and the next run completes
    if small_fs is not None:
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
    assert env.cli("run", "--config", str(env.cfg_file)) == 0
    assert verify(env.cfg.repository, env.key).ok
