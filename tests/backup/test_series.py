"""Two series in one repository: the vault's snapshots and the dashboard's database (tag
"dashboard"), written every night by two writers with the same public and dedup keys. Retention
keeps each series on its own, ``latest`` names the vault's newest unless a tag is given, and
purge keeps a snapshot's tag. Before tags, a night's second snapshot (whichever came later)
displaced the first under keep-daily, and ``restore latest`` restored the database."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backup import snapshot
from backup.repo import Repository
from backup.run import backup
from backup.verify import verify
from tests.backup.conftest import Env, fill_vault


def _db_run(env: Env, staging: Path, now: datetime, night: int) -> str:
    (staging / "database.sqlite3").write_bytes(night.to_bytes(4, "big") * 5000)
    opts = replace(env.options(tag="dashboard"), vault_paths=[staging],
                   cache_dir=env.tmp / "dashboard-cache")  # the dashboard's own cache
    repo = env.repo()
    with repo.locked("run"):
        return backup(repo, opts, now).snapshot_id


def test_each_series_keeps_its_own_nights(env: Env) -> None:
    fill_vault(env.vault, files=4, big=0)
    staging = env.tmp / "staging"
    staging.mkdir()
    start = datetime(2026, 8, 1, 16, 45, tzinfo=UTC)  # 01:45 Tokyo: the database first
    db_ids, vault_ids = [], []
    for night in range(10):
        t = start + timedelta(days=night)
        db_ids.append(_db_run(env, staging, t, night))
        (env.vault / "daily.txt").write_text(f"night {night}")
        vault_ids.append(env.run(now=t + timedelta(minutes=15)).snapshot_id)
    repo = env.repo()
    tags = {s.header.id: s.header.tag for s in repo.snapshots()}
    assert {tags[i] for i in db_ids} == {"dashboard"} and {tags[i] for i in vault_ids} == {None}
    # an untagged header is what it was before series existed (no "tag" key)
    assert "tag" not in json.loads(repo.read_snapshot(vault_ids[-1]).raw_header)
    assert repo.resolve("latest") == vault_ids[-1]
    assert repo.resolve("latest", "dashboard") == db_ids[-1]

    assert env.cli("prune", "--config", str(env.cfg_file), "--keep-daily", "3",
                   "--keep-weekly", "0", "--keep-monthly", "0") == 0
    left = {s.header.id: s.header.tag for s in Repository.open(env.cfg.repository).snapshots()}
    assert set(left) == set(db_ids[-3:]) | set(vault_ids[-3:])
    assert verify(env.cfg.repository, env.key).ok


def test_purge_keeps_the_tag_and_restore_latest_takes_the_series(env: Env) -> None:
    fill_vault(env.vault, files=3, big=0)
    staging = env.tmp / "staging"
    staging.mkdir()
    (staging / "old.txt").write_text("to be purged")
    now = datetime(2026, 8, 1, 16, 45, tzinfo=UTC)
    _db_run(env, staging, now, 1)
    env.run(now=now + timedelta(minutes=15))
    assert env.cli("purge", str(staging / "old.txt"), "--config", str(env.cfg_file),
                   *env.keyargs()) == 0
    repo = Repository.open(env.cfg.repository)
    db = repo.read_snapshot(repo.resolve("latest", "dashboard"))
    assert db.header.tag == "dashboard"
    paths = [e[1] for e in snapshot.open_manifest(db, env.key)["entries"]]
    assert str(staging / "database.sqlite3") in paths and str(staging / "old.txt") not in paths
    target = env.tmp / "restored"
    assert env.cli("restore", "latest", "--tag", "dashboard", "--target", str(target),
                   "--config", str(env.cfg_file), *env.keyargs()) == 0
    restored = target / str(staging).lstrip("/") / "database.sqlite3"
    assert restored.read_bytes() == (1).to_bytes(4, "big") * 5000
    vault_target = env.tmp / "vault-restored"
    assert env.cli("restore", "latest", "--target", str(vault_target),
                   "--config", str(env.cfg_file), *env.keyargs()) == 0
    assert (vault_target / str(env.vault).lstrip("/")).is_dir()
    assert not (vault_target / str(staging).lstrip("/")).exists()
