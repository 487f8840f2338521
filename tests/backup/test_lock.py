"""The repository lock: a dead process's lock is cleared automatically, a live one respected."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from backup.errors import LockedError
from backup.lock import _start_time
from tests.backup.conftest import Env, fill_vault


def _write_lock(env: Env, owner: dict[str, object]) -> None:
    locks = env.cfg.repository / "locks"
    (locks / "lock").write_text(json.dumps(owner))


def test_stale_lock_of_dead_pid_is_cleared(env: Env) -> None:
    fill_vault(env.vault, files=3, big=0)
    env.run()
    dead = subprocess.Popen(["true"])
    dead.wait()
    _write_lock(env, {"host": socket.gethostname(), "pid": dead.pid, "start": "1",
                      "purpose": "run"})
    assert env.cli("run", "--config", str(env.cfg_file)) == 0
    assert not (env.cfg.repository / "locks" / "lock").exists()


def test_reused_pid_is_not_mistaken_for_the_owner(env: Env) -> None:
    fill_vault(env.vault, files=2, big=0)
    env.run()
    # our own pid is alive, but with another start time it is a different process
    _write_lock(env, {"host": socket.gethostname(), "pid": os.getpid(), "start": "12345",
                      "purpose": "run"})
    env.run()


def test_live_lock_is_respected(env: Env) -> None:
    fill_vault(env.vault, files=2, big=0)
    env.run()
    with subprocess.Popen(["sleep", "30"]) as live:
        try:
            _write_lock(env, {"host": socket.gethostname(), "pid": live.pid,
                              "start": _start_time(live.pid), "purpose": "run"})
            assert env.cli("run", "--config", str(env.cfg_file)) == LockedError.exit_code
            with pytest.raises(LockedError, match="locked by run pid"):
                env.run()
            assert (env.cfg.repository / "locks" / "lock").exists()
        finally:
            live.kill()
            live.wait()
    # once its owner is gone, the same lock is stale and cleared
    env.run()


def test_lock_from_another_host_is_respected(env: Env) -> None:
    fill_vault(env.vault, files=2, big=0)
    env.run()
    _write_lock(env, {"host": "some-other-host", "pid": 1, "start": "1", "purpose": "prune"})
    with pytest.raises(LockedError, match="some-other-host"):
        env.run()
