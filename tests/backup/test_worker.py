"""The small-chunk worker process (backup/worker.py): a run whose small files go through it
restores exactly and stores each content once (also content met by the threads before the
switch and the tail of a large file); a file gone before the worker reads it is named,
counted and left out; a worker that dies fails the run clearly, leaves a valid repository,
and the next run completes."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import backup.run
import backup.uploader
from backup import snapshot, walk
from backup.errors import StorageError
from backup.restore import restore
from backup.verify import verify
from backup.worker import WorkerProcess
from tests.backup.conftest import Env, tree_state


@pytest.fixture(autouse=True)
def early_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup.uploader, "WORKER_AFTER", 20)
    monkeypatch.setattr(backup.uploader, "BATCH_COUNT", 16)  # many batches


def _vault(vault: Path, n: int) -> None:
    rng = random.Random(3)
    for i in range(n):
        d = vault / f"{i // 50:02d}"
        d.mkdir(parents=True, exist_ok=True)
        # every 10th file has the content of file 0 (stored by the threads, before the switch)
        body = b"same content, first met by the threads\n" * 30 if i % 10 == 0 else \
            f"{i},山田,{rng.random()}\n".encode() * rng.randrange(1, 200)
        (d / f"届出_{i:04d}.txt").write_bytes(body)
    # a large file whose last chunk is short: it goes to the worker as data
    (vault / "large.bin").write_bytes(rng.randbytes(3 << 20) + b"tail" * 100)


def _blob_ids(env: Env) -> list[bytes]:
    idx = env.repo().load_index(env.key)
    return [e.id for info in idx.packs.values() for e in info.entries]


def _restored_equal(env: Env, sid: str) -> bool:
    repo = env.repo()
    target = env.tmp / f"out-{sid[:8]}"
    restore(repo.root, repo.load_index(), env.key,
            snapshot.open_manifest(repo.read_snapshot(sid), env.key), target)
    return tree_state(target / str(env.vault).lstrip("/")) == tree_state(env.vault)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[WorkerProcess]:
    """The worker processes the run starts, in order."""
    seen: list[WorkerProcess] = []
    real_init = WorkerProcess.__init__

    def spy(self: WorkerProcess, *a: Any, **k: Any) -> None:
        real_init(self, *a, **k)
        seen.append(self)

    monkeypatch.setattr(WorkerProcess, "__init__", spy)
    return seen


def test_small_files_through_the_worker_restore_exactly_and_are_stored_once(
        env: Env, started: list[WorkerProcess]) -> None:
    _vault(env.vault, 400)
    unique = {p.read_bytes() for p in env.vault.rglob("*") if p.is_file()}  # (before: atimes)
    done = env.run(small_file_workers=2)
    assert len(started) == 2 and all(w._proc.returncode == 0 for w in started)
    ids = _blob_ids(env)
    assert len(ids) == len(set(ids))  # no content stored twice
    assert done.files == 401 and done.skipped == 0
    assert done.bytes_new == sum(len(c) for c in unique)
    assert verify(env.repo().root, env.key).ok
    assert _restored_equal(env, done.snapshot_id)
    assert not any((env.repo().root / "tmp").iterdir())
    # an incremental run with few changes does not start it, and stores no duplicate either
    (env.vault / "00" / "届出_0001.txt").write_bytes(b"changed\n")
    again = env.run(small_file_workers=2)
    assert len(started) == 2 and again.files_changed == 1
    assert len(_blob_ids(env)) == len(ids) + 1
    assert _restored_equal(env, again.snapshot_id)


def test_a_file_gone_before_the_worker_reads_it_is_named_and_left_out(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _vault(env.vault, 200)
    victim = env.vault / "03" / "届出_0155.txt"
    real_walk = walk.walk

    def walk_and_delete(*a: Any, **k: Any) -> Iterator[walk.Item]:
        for item in real_walk(*a, **k):
            if item.path == str(victim):  # walked (its stat taken), then gone
                victim.unlink()
            yield item

    monkeypatch.setattr(backup.run, "walk", walk_and_delete)
    done = env.run()
    assert done.skipped == 1 and done.files == 200
    assert any("届出_0155.txt" in p for p in done.skipped_paths)
    paths = [e[1] for e in snapshot.open_manifest(
        env.repo().read_snapshot(done.snapshot_id), env.key)["entries"]]
    assert str(victim) not in paths
    assert verify(env.repo().root, env.key).ok


def test_a_worker_that_dies_fails_the_run_and_the_next_run_completes(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _vault(env.vault, 400)
    real_submit = WorkerProcess.submit
    calls = 0

    def dies_at_the_third_batch(self: WorkerProcess, items: list[Any]) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            self._proc.kill()
            self._proc.wait()
        return real_submit(self, items)

    monkeypatch.setattr(WorkerProcess, "submit", dies_at_the_third_batch)
    with pytest.raises(StorageError, match="small-file worker process ended"):
        env.run()
    monkeypatch.undo()
    assert verify(env.repo().root).ok
    assert not env.repo().snapshot_names()
    done = env.run()
    assert verify(env.repo().root, env.key).ok
    assert _restored_equal(env, done.snapshot_id)
    assert not any((env.repo().root / "tmp").iterdir())


def test_the_worker_gets_no_key_on_its_command_line_or_environment(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    class Spy(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args: list[str], **kw: Any) -> None:
            seen.append((list(args), dict(kw.get("env") or os.environ)))
            super().__init__(args, **kw)

    monkeypatch.setattr(subprocess, "Popen", Spy)
    _vault(env.vault, 100)
    env.run(small_file_workers=2)
    assert len(seen) == 2
    secret = env.dedup_key()
    for text in [t for argv, environ in seen for t in [*argv, *environ.values()]]:
        assert secret.hex() not in text and secret.hex().upper() not in text


def test_a_worker_dies_with_its_parent(tmp_path: Path) -> None:
    """A run killed with SIGKILL does not leave its workers behind (EOF on their stdin, or
    PR_SET_PDEATHSIG while busy with a batch)."""
    import select
    import signal
    import sys

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, threading\n"
        "from pathlib import Path\n"
        "from backup.worker import WorkerProcess\n"
        "w = WorkerProcess(Path(sys.argv[1]), [], bytes(32), bytes(32), pack_size=1 << 20,\n"
        "                  level=3, on_done=lambda packs, stats: None)\n"
        "w.submit([]).result()  # the worker is up and has read its init message\n"
        "print(w._proc.pid, flush=True)\n"
        "threading.Event().wait()\n")
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path)], cwd=tmp_path,
                              stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)})
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    pidfd = os.pidfd_open(worker)
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        assert poller.poll(10_000), "the worker outlived its parent"
    finally:
        os.close(pidfd)
        parent.stdout.close()


@pytest.mark.parametrize("workers", [0, 1])
def test_small_file_workers_sets_how_many_processes_start(
        env: Env, started: list[WorkerProcess], workers: int) -> None:
    """``[backup] small_file_workers``: 0 keeps small files in the threads, 1 uses one process
    (less memory on a small node); either way every content is stored once and restores."""
    _vault(env.vault, 300)
    done = env.run(small_file_workers=workers)
    assert len(started) == workers
    ids = _blob_ids(env)
    assert len(ids) == len(set(ids))
    assert _restored_equal(env, done.snapshot_id)
