"""Retention (prune keep-daily/weekly/monthly) and purge of a path from every snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backup import cache, crypto, pack, snapshot
from backup.index import load
from backup.repo import Repository
from backup.restore import restore
from backup.retention import select_keep
from backup.verify import verify
from tests.backup.conftest import Env, Recorder, fill_vault, tree_state


def test_select_keep_daily_weekly_monthly() -> None:
    base = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)  # 02:00 Tokyo on the 23rd
    snaps = [(f"s{i:03d}", base - timedelta(days=i)) for i in range(120)]
    snaps.append(("s000b", base - timedelta(hours=1)))  # a second run the same night
    keep = select_keep(snaps, daily=7, weekly=4, monthly=3, tz="Asia/Tokyo")
    daily = {f"s{i:03d}" for i in range(7)}
    assert daily <= keep and "s000b" not in keep
    assert len(keep) == len(daily | {s for s in keep if s not in daily})
    # weekly: one per ISO week (Sundays-> newest of each week), monthly: newest of each month
    tokyo = [(sid, t.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))) for sid, t in
             snaps]
    months = {(t.year, t.month) for sid, t in tokyo if sid in keep}
    assert len(months) >= 3
    assert len(keep) <= 7 + 4 + 3
    only_monthly = select_keep(snaps, daily=0, weekly=0, monthly=2, tz="Asia/Tokyo")
    assert only_monthly == {"s000", next(s for s, t in tokyo if t.month == 10 and t.day == 31)}


def test_prune_removes_snapshots_and_unreferenced_data(env: Env) -> None:
    start = datetime(2026, 8, 1, 17, 0, tzinfo=UTC)
    fill_vault(env.vault, files=5, big=0)
    for day in range(40):
        (env.vault / "daily.bin").write_bytes(day.to_bytes(4, "big") * 100_000)
        env.run(now=start + timedelta(days=day))
    repo = env.repo()
    assert len(repo.snapshot_names()) == 40
    size_before = repo.size()
    rec = Recorder()
    code = env.cli("prune", "--config", str(env.cfg_file), "--keep-daily", "5",
                   "--keep-weekly", "2", "--keep-monthly", "2", emit=rec)
    assert code == 0
    kind, data = rec.events[-1]
    assert kind == "backup.pruned" and data["mode"] == "prune"
    left = Repository.open(env.cfg.repository).snapshots()
    assert 5 <= len(left) <= 9 and data["snapshots_removed"] == 40 - len(left)
    assert data["bytes_freed"] > 0 and repo.size() < size_before
    assert verify(env.cfg.repository, env.key).ok
    # the content of a pruned day is gone: its chunk id is in no pack any more
    gone = crypto.chunk_id(env.dedup_key(), (3).to_bytes(4, "big") * 100_000)
    idx = load(env.cfg.repository / "index", env.key)
    assert gone not in idx.by_id
    newest = left[-1]
    manifest = snapshot.open_manifest(newest, env.key)
    target = env.tmp / "after-prune"
    restore(env.cfg.repository, idx, env.key, manifest, target)
    assert (target / str(env.vault).lstrip("/") / "daily.bin").read_bytes() == (
        env.vault / "daily.bin").read_bytes()
    # the next run still works (cache entries of vanished chunks are not trusted)
    env.run()


def test_purge_removes_a_path_from_every_snapshot(env: Env) -> None:
    fill_vault(env.vault, files=6, big=0)
    person = env.vault / "employees" / "山田太郎"
    person.mkdir(parents=True)
    secret = "山田太郎,123456789018,扶養親族\n" * 3000
    (person / "mynumber.csv").write_text(secret, encoding="utf-8")
    shared = "shared content kept by another file\n" * 2000
    (person / "shared.txt").write_text(shared)
    (env.vault / "other-copy.txt").write_text(shared)
    env.run()
    (env.vault / "later.txt").write_text("x")
    env.run()
    (person / "mynumber.csv").unlink()  # the vault first, then the backups
    (person / "shared.txt").unlink()
    person.rmdir()
    env.run()
    assert len(env.repo().snapshot_names()) == 3
    dedup = env.dedup_key()
    secret_id = crypto.chunk_id(dedup, secret.encode())
    shared_id = crypto.chunk_id(dedup, shared.encode())
    assert secret_id in load(env.cfg.repository / "index", env.key).by_id
    rec = Recorder()
    code = env.cli("purge", str(env.vault / "employees" / "山田太郎"), "--config",
                   str(env.cfg_file), *env.keyargs(), emit=rec)
    assert code == 0
    kind, data = rec.events[-1]
    assert kind == "backup.pruned" and data["mode"] == "purge"
    assert len(data["snapshots_changed"]) == 2  # the third never had it
    assert "山田" not in str(data)
    repo = Repository.open(env.cfg.repository)
    idx = load(repo.root / "index", env.key)
    assert secret_id not in idx.by_id and shared_id in idx.by_id
    for pid in idx.packs:  # not hidden in any pack trailer either
        entries, _groups, _size = pack.read_trailer(pack.pack_path(repo.root, pid), env.key)
        assert secret_id not in {e.id for e in entries}
    for snap in repo.snapshots():
        paths = [e[1] for e in snapshot.open_manifest(snap, env.key)["entries"]]
        assert not any("山田太郎" in p for p in paths)
        assert str(env.vault / "other-copy.txt") in paths
    assert verify(repo.root, env.key).ok
    assert not any(e for e in cache.load(env.cfg.cache_dir, repo.id).values()
                   if any(c[2] == secret_id.hex() for c in e[4]))


@pytest.mark.parametrize("step", ["new-index", "pack-lists", "old-index", "old-packs"])
def test_prune_with_key_killed_at_each_step_leaves_a_valid_repository(
        env: Env, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    from pathlib import Path

    from backup import gc

    start = datetime(2026, 8, 1, 17, 0, tzinfo=UTC)
    fill_vault(env.vault, files=4, big=0)
    for day in range(4):  # day 0's daily.bin shares a pack with files every snapshot keeps
        (env.vault / "daily.bin").write_bytes((day + 1).to_bytes(4, "big") * 50_000)
        env.run(now=start + timedelta(days=day))
    expected = tree_state(env.vault)

    def killed(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    real_remove = gc.remove
    if step == "new-index":
        monkeypatch.setattr(Repository, "write_index", killed)
    elif step == "pack-lists":
        monkeypatch.setattr(gc, "write_atomic", killed)
    else:
        folder = "index" if step == "old-index" else "packs"

        def remove(path: Path) -> None:
            if folder in path.parts[-3:]:
                raise KeyboardInterrupt
            real_remove(path)

        monkeypatch.setattr(gc, "remove", remove)
    repo = env.repo()
    with pytest.raises(KeyboardInterrupt), repo.locked("prune"):
        gc.prune(repo, daily=2, weekly=0, monthly=0, tz="Asia/Tokyo", key=env.key)
    monkeypatch.undo()
    report = verify(env.cfg.repository)
    assert report.ok, report.problems
    latest = Repository.open(env.cfg.repository).snapshots()[-1]
    target = env.tmp / "r"
    restore(repo.root, repo.load_index(), env.key, snapshot.open_manifest(latest, env.key),
            target)
    assert tree_state(target / str(env.vault).lstrip("/")) == expected
    with repo.locked("prune"):
        res = gc.prune(repo, daily=2, weekly=0, monthly=0, tz="Asia/Tokyo", key=env.key)
    assert verify(env.cfg.repository, env.key).ok
    gone = crypto.chunk_id(env.dedup_key(), (1).to_bytes(4, "big") * 50_000)
    assert gone not in load(repo.root / "index", env.key).by_id and res.snapshots_kept == 2
    env.run(now=start + timedelta(days=5))
    assert verify(env.cfg.repository, env.key).ok
