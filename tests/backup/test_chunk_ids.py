"""Chunk ids never stand in clear in the repository, and the gateway's dedup cache lists only
chunks the repository still holds (trust-boundaries finding 6).

With the gateway's dedup key and the repository, a thief could otherwise confirm small
low-entropy files (a name and a 12-digit number on a template) by brute force from the chunk
id lists (chunk id = HMAC-SHA256(dedup key, chunk))."""

from __future__ import annotations

import json
from pathlib import Path

from backup import cache, compress, crypto
from tests.backup.conftest import Env, fill_vault

TEMPLATE = "個人番号届出書\n氏名: {name}\n個人番号: {number}\n扶養: なし\n"
PEOPLE = [("山田太郎", "123456789018"), ("佐藤花子", "987654321004"), ("鈴木一郎", "111111111118")]


def forms(vault: Path) -> list[Path]:
    out = []
    for i, (name, number) in enumerate(PEOPLE):
        p = vault / "届出" / f"form_{i}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(TEMPLATE.format(name=name, number=number), encoding="utf-8")
        out.append(p)
    return out


def cache_text(env: Env) -> str:
    return "".join(compress.decompress_meta(p.read_bytes()).decode()
                   for p in env.cfg.cache_dir.glob("*.cache"))


def cached_ids(env: Env) -> set[str]:
    """Every chunk id (hex) the gateway's cache lists, in file entries or elsewhere."""
    repo = env.repo()
    ids = {c[2] for e in cache.load(env.cfg.cache_dir, repo.id).values() for c in e[4]
           if c[2] is not None}
    doc = json.loads(cache_text(env))
    for ids_of_pack in doc.get("chunks", {}).values():
        ids.update(ids_of_pack)
    return ids


def test_no_chunk_id_stands_in_clear_in_any_repository_byte(env: Env) -> None:
    fill_vault(env.vault, files=8, big=2)
    small = forms(env.vault)
    env.run()
    (env.vault / "later.csv").write_text("x,1\n" * 100)
    env.run()  # two runs: several packs, index files and snapshots
    dedup = env.dedup_key()
    form_ids = {crypto.chunk_id(dedup, p.read_bytes()) for p in small}  # one chunk each
    all_ids = {bytes.fromhex(h) for h in cached_ids(env)}
    assert form_ids <= all_ids and len(all_ids) > len(form_ids)  # the ids are the right ones
    files = [p for p in env.cfg.repository.rglob("*") if p.is_file()]
    assert len(files) >= 6
    for path in files:
        data = path.read_bytes()
        text = data.lower()
        for cid in all_ids:
            assert cid not in data, f"a chunk id stands in clear in {path.relative_to(env.tmp)}"
            assert cid.hex().encode() not in text, f"a chunk id in hex in {path.name}"


def test_purge_leaves_no_purged_id_in_the_gateway_cache(env: Env) -> None:
    fill_vault(env.vault, files=6, big=0)
    person = env.vault / "employees" / "山田太郎"
    person.mkdir(parents=True)
    secret = "山田太郎,123456789018,扶養親族\n" * 300
    (person / "mynumber.csv").write_text(secret, encoding="utf-8")
    env.run()
    dedup = env.dedup_key()
    secret_id = crypto.chunk_id(dedup, secret.encode()).hex()
    assert secret_id in cached_ids(env)
    (person / "mynumber.csv").unlink()  # the vault first, then the backups
    person.rmdir()
    assert env.cli("purge", str(person), "--config", str(env.cfg_file), *env.keyargs()) == 0
    env.vault.rename(env.tmp / "unmounted")
    assert env.cli("run", "--config", str(env.cfg_file)) == 7  # the gateway's next run fails,
    assert secret_id not in cached_ids(env)  # but has already forgotten the purged chunks
    assert secret_id not in cache_text(env)
    (env.tmp / "unmounted").rename(env.vault)
    env.run()
    assert secret_id not in cache_text(env)
    # the same content coming back is stored again, not "deduplicated" against purged data
    (env.vault / "again.csv").write_text(secret, encoding="utf-8")
    env.run()
    assert env.cli("verify", "--read-data", "--config", str(env.cfg_file), *env.keyargs()) == 0
    target = env.tmp / "restored"
    assert env.cli("restore", "latest", "--target", str(target), "--config", str(env.cfg_file),
                   *env.keyargs()) == 0
    assert (target / str(env.vault).lstrip("/") / "again.csv").read_text(
        encoding="utf-8") == secret


def test_replacement_gateway_with_a_fresh_cache(env: Env) -> None:
    """A new gateway (same keys, empty cache) uploads the vault again: the repository stays
    correct, and a prune with the key removes the duplicates, keeping the copies the new
    gateway knows (its next run uploads nothing)."""
    fill_vault(env.vault, files=12, big=2)
    first = env.run()
    size_one = env.repo().size()
    import shutil

    shutil.rmtree(env.cfg.cache_dir)  # the replacement gateway
    again = env.run()
    assert again.files_new == again.files and again.bytes_new == first.bytes_new
    assert env.repo().size() > 1.8 * size_one  # everything stored twice for now
    assert env.cli("verify", "--read-data", "--config", str(env.cfg_file), *env.keyargs()) == 0
    assert env.cli("prune", "--keep-daily", "5", "--config", str(env.cfg_file),
                   *env.keyargs()) == 0
    assert env.repo().size() < 1.1 * size_one
    assert env.cli("verify", "--read-data", "--config", str(env.cfg_file), *env.keyargs()) == 0
    third = env.run()
    assert third.bytes_new == 0 and third.files_unchanged == third.files
    target = env.tmp / "restored"
    assert env.cli("restore", "latest", "--target", str(target), "--config", str(env.cfg_file),
                   *env.keyargs()) == 0
    from tests.backup.conftest import tree_state

    assert tree_state(target / str(env.vault).lstrip("/")) == tree_state(env.vault)


def test_prune_without_key_drops_whole_packs_with_key_dead_blobs(env: Env) -> None:
    from datetime import UTC, datetime, timedelta

    from backup.index import load

    start = datetime(2026, 8, 1, 17, 0, tzinfo=UTC)
    fill_vault(env.vault, files=4, big=0)
    daily = env.vault / "daily.bin"
    for day in range(6):  # one chunk each; day 0's shares a pack with files kept throughout
        daily.write_bytes((day + 1).to_bytes(4, "big") * 50_000)
        env.run(now=start + timedelta(days=day))
    dedup = env.dedup_key()
    day0 = crypto.chunk_id(dedup, (1).to_bytes(4, "big") * 50_000)
    day2 = crypto.chunk_id(dedup, (3).to_bytes(4, "big") * 50_000)
    keep = ["--keep-daily", "2", "--keep-weekly", "0", "--keep-monthly", "0"]
    assert env.cli("prune", *keep, "--config", str(env.cfg_file)) == 0
    idx = load(env.cfg.repository / "index", env.key)
    assert day2 not in idx.by_id  # its own pack: gone without any key
    assert day0 in idx.by_id  # dead, but in a pack still in use
    assert env.cli("verify", "--config", str(env.cfg_file)) == 0
    assert env.cli("prune", *keep, "--config", str(env.cfg_file), *env.keyargs()) == 0
    idx = load(env.cfg.repository / "index", env.key)
    assert day0 not in idx.by_id
    assert env.cli("verify", "--read-data", "--config", str(env.cfg_file), *env.keyargs()) == 0
    # the gateway forgets the chunks of the repacked pack and stores them again: still correct
    assert not {h for h in cached_ids(env)} - {e.id.hex() for p in idx.packs.values()
                                                for e in p.entries}
    nxt = env.run(now=start + timedelta(days=7))
    assert nxt.bytes_new > 0
    assert env.cli("verify", "--read-data", "--config", str(env.cfg_file), *env.keyargs()) == 0


def test_a_failed_run_resumes_from_its_last_checkpoint(env: Env, monkeypatch: object) -> None:
    import pytest

    import backup.run
    from backup.errors import StorageError
    from backup.repo import Repository

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    import random

    rng = random.Random(3)
    for i in range(6):
        (env.vault / f"scan_{i}.bin").write_bytes(rng.randbytes(700_000))
    monkeypatch.setattr(backup.run, "CHECKPOINT_PACKS", 1)

    def no_snapshot(self: Repository, data: bytes) -> str:
        raise StorageError("killed before the snapshot")

    monkeypatch.setattr(Repository, "write_snapshot", no_snapshot)
    with pytest.raises(StorageError):
        env.run()
    monkeypatch.undo()
    assert not env.repo().snapshot_names()
    resumed = env.run()
    # the cache of the run was saved before its snapshot: nothing is read or uploaded again
    assert resumed.files_unchanged == 6 and resumed.bytes_read == 0 and resumed.bytes_new == 0
    assert env.cli("verify", "--read-data", "--config", str(env.cfg_file), *env.keyargs()) == 0


def test_a_run_killed_after_a_checkpoint_does_not_upload_again(
    env: Env, monkeypatch: object
) -> None:
    import random

    import pytest

    import backup.run
    from backup.errors import StorageError

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    rng = random.Random(3)
    for i in range(24):  # 16.8 MB in 1 MB packs: most are checkpointed during the walk
        (env.vault / f"scan_{i:02d}.bin").write_bytes(rng.randbytes(700_000))
    monkeypatch.setattr(backup.run, "CHECKPOINT_PACKS", 1)
    checkpoint = backup.run._Checkpoint.__call__

    def die_at_the_end(self: backup.run._Checkpoint, up: object, *,
                       save_cache: bool = True) -> None:
        if not save_cache:  # the last one, after every pack but the open ones is indexed
            raise StorageError("killed at the end")
        checkpoint(self, up, save_cache=save_cache)  # type: ignore[arg-type]

    monkeypatch.setattr(backup.run._Checkpoint, "__call__", die_at_the_end)
    with pytest.raises(StorageError):
        env.run(pack_size=1 << 20)
    monkeypatch.undo()
    assert not env.repo().snapshot_names()
    from backup import cache

    stored = len(cache.load_state(env.cfg.cache_dir, env.repo().id)[1])
    assert stored > 0  # chunks of the checkpointed packs
    resumed = env.run()
    assert resumed.bytes_read == 24 * 700_000  # read again (no file entries yet) ...
    assert resumed.bytes_new < 24 * 700_000  # ... but the checkpointed chunks not uploaded
    assert env.cli("verify", "--read-data", "--config", str(env.cfg_file), *env.keyargs()) == 0
