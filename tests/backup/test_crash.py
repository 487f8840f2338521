"""50 backup runs SIGKILLed at random moments: after each the repository verifies, the next run
succeeds and no snapshot is lost.

Each run is the real CLI (`python -m backup run`) in a child forked from this already
initialised interpreter, so the random kill lands in the run itself rather than in the
interpreter's start-up, and 50 runs fit in the test budget.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time

from backup import snapshot
from backup.repo import Repository
from backup.restore import restore
from backup.verify import verify
from tests.backup.conftest import Env, fill_vault, tree_state


def _child_main(argv: list[str]) -> None:
    from backup.__main__ import main

    code = 1
    try:
        import sys

        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the child exits right after
        sys.stdout = sys.stderr
        code = main(argv)
    finally:
        os._exit(code)


def _start(env: Env) -> multiprocessing.process.BaseProcess:
    proc = multiprocessing.get_context("fork").Process(
        target=_child_main, args=(["run", "--config", str(env.cfg_file)],))
    proc.start()
    return proc


def test_fifty_random_kills(env: Env) -> None:
    rng = random.Random(50)
    fill_vault(env.vault, files=30, big=1)
    env.run()
    (env.vault / "warm.bin").write_bytes(rng.randbytes(2 << 20))
    t0 = time.monotonic()
    full = _start(env)
    full.join()
    assert full.exitcode == 0
    duration = time.monotonic() - t0
    kills = attempts = 0
    known: set[str] = set(Repository.open(env.cfg.repository).snapshot_names())
    while kills < 50:
        attempts += 1
        assert attempts < 150, "runs finish before the kill too often to count 50 kills"
        # new data each time, so a run has packs, index and snapshot to write
        (env.vault / f"new_{attempts}.bin").write_bytes(
            rng.randbytes(rng.randrange(1 << 17, 1 << 20)))
        (env.vault / f"note_{attempts}.txt").write_text(
            f"note {attempts}\n" * rng.randrange(1, 5000))
        proc = _start(env)
        started = time.monotonic()
        proc.join(timeout=rng.uniform(0.0, 0.9) * duration)
        if proc.is_alive():
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        else:
            assert proc.exitcode == 0
            duration = max(duration, time.monotonic() - started)
        proc.join()
        report = verify(env.cfg.repository)
        assert report.ok, f"attempt {attempts}: {report.problems}"
        names = set(Repository.open(env.cfg.repository).snapshot_names())
        assert known <= names, f"attempt {attempts}: a snapshot was lost"
        result = env.run()  # the next run succeeds (and clears the dead lock)
        known = names | {result.snapshot_id}
    print(f"{kills} kills in {attempts} runs, run time {duration:.2f}s")
    assert verify(env.cfg.repository, env.key).ok
    repo = Repository.open(env.cfg.repository)
    latest = repo.snapshots()[-1]
    target = env.tmp / "final"
    restore(repo.root, repo.load_index(), env.key, snapshot.open_manifest(latest, env.key),
            target)
    assert tree_state(target / str(env.vault).lstrip("/")) == tree_state(env.vault)
    assert not any((repo.root / "tmp").iterdir())  # the last run cleaned up after the kills
