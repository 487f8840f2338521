"""Many small files: restore equals the vault (sparse files and hard links included), the
manifest and the cache are written as the run goes (a run does not hold every entry), and a
cache in the previous layout is still read."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from backup import cache, compress, run, snapshot
from tests.backup.conftest import Env, tree_state


def small_vault(vault: Path, n: int, seed: int = 7) -> tuple[list[Path], list[Path]]:
    """``n`` files under 8 KiB in folders of 100; every 50th sparse (its first 4 KiB a hole),
    every 40th a hard link to an earlier file. Returns (sparse files, hard links)."""
    rng = random.Random(seed)
    made: list[Path] = []
    sparse: list[Path] = []
    links: list[Path] = []
    for i in range(n):
        d = vault / f"{i // 1000:02d}" / f"箱_{i // 100 % 10}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"届出_{i:05d}.txt"
        if i % 40 == 39:
            os.link(made[rng.randrange(len(made))], p)
            links.append(p)
            continue
        if i % 50 == 49:
            with open(p, "wb") as fh:
                fh.seek(4096)
                fh.write(rng.randbytes(rng.randrange(1, 3000)))
            sparse.append(p)
        else:
            p.write_bytes(f"{i},山田,{rng.random()}\n".encode() * rng.randrange(0, 200))
        made.append(p)
    return sparse, links


def test_many_small_files_restore_equal_with_sparse_files_and_hard_links(env: Env) -> None:
    sparse, links = small_vault(env.vault, 3000)
    assert sparse and all(os.stat(p).st_blocks * 512 < os.stat(p).st_size for p in sparse)
    assert links and all(os.stat(p).st_nlink > 1 for p in links)
    first = env.run()
    assert first.files == 3000 and first.files_new == 3000 and first.skipped == 0

    rng = random.Random(3)
    files = sorted(p for p in env.vault.rglob("*") if p.is_file())
    for p in rng.sample(files, 30):  # 1 %
        p.write_bytes(rng.randbytes(rng.randrange(1, 8000)))
    second = env.run()
    assert second.files == 3000 and second.files_unchanged >= 3000 - 2 * 30
    assert second.files_removed == 0

    target = env.tmp / "out"
    assert env.cli("restore", "latest", "--target", str(target), "--config", str(env.cfg_file),
                   *env.keyargs()) == 0
    restored = target / str(env.vault).lstrip("/")
    assert tree_state(restored) == tree_state(env.vault)
    # hard links come back as separate files with the same content (backup/FORMAT.md, Limits)
    for p in links:
        q = restored / p.relative_to(env.vault)
        assert q.read_bytes() == p.read_bytes()


def test_the_streamed_manifest_is_the_manifest(env: Env) -> None:
    small_vault(env.vault, 1200)
    done = env.run()
    repo = env.repo()
    snap = repo.read_snapshot(done.snapshot_id)
    manifest = snapshot.open_manifest(snap, env.key)
    assert len([e for e in manifest["entries"] if e[0] == snapshot.FILE]) == 1200
    paths = [e[1] for e in manifest["entries"]]
    assert paths[0] == str(env.vault) and len(set(paths)) == len(paths)
    # the stored manifest (version 2) names each chunk by its position in the references,
    # the ids of its chunks in manifest order (hard links: an id used twice is there twice)
    refs = snapshot.open_refs(snap, env.key)
    assert set(refs) == snapshot.manifest_refs(manifest) and len(set(refs)) < len(refs)
    assert manifest["v"] == 2
    in_order = [bytes.fromhex(c[2]) for e in manifest["entries"]
                if e[0] == snapshot.FILE for c in e[8] if c[2] is not None]
    assert refs == in_order
    # what ManifestWriter writes again from the entries read is what the run wrote
    w = snapshot.ManifestWriter(manifest["paths"])
    for e in manifest["entries"]:
        w.add(e)
    streamed = json.loads(compress.decompress_meta(w.finish()))
    assert bytes(w.refs) == b"".join(refs)
    files = [e for e in streamed["entries"] if e[0] == snapshot.FILE and e[8]]
    assert files and all(isinstance(c[2], int) for e in files for c in e[8])
    assert list(snapshot.ManifestText(json.dumps(streamed), bytes(w.refs)).entries()) \
        == manifest["entries"]


def test_a_run_keeps_only_a_window_of_entries(env: Env, monkeypatch) -> None:  # noqa: ANN001
    """8,000 tiny files: entries wait for their chunk results in a bounded queue, not all,
    on a first run and on an incremental run that changed a few."""
    for i in range(8000):
        d = env.vault / f"{i // 500:02d}"
        d.mkdir(exist_ok=True)
        (d / f"{i}.txt").write_text(f"{i}\n")
    longest = 0
    put = run._Out.put

    def watch(self: run._Out, item: run._Item) -> None:
        nonlocal longest
        longest = max(longest, len(self.queue))
        put(self, item)

    monkeypatch.setattr(run._Out, "put", watch)
    done = env.run()
    assert done.files == 8000
    assert 0 < longest < 4000
    # a few changed files among unchanged ones: the unchanged wait behind each changed one
    # until its chunk results are in, which needs its (not yet full) batch sent
    for i in range(0, 8000, 1000):
        (env.vault / f"{i // 500:02d}" / f"{i}.txt").write_text("changed\n")
    longest = 0
    again = env.run()
    assert again.files_changed == 8 and again.files_unchanged == 7992
    assert 0 < longest < 4000


def test_a_cache_in_the_previous_layout_is_read(env: Env) -> None:
    """The cache used to be written with "chunks" first and spaces after separators."""
    small_vault(env.vault, 300)
    env.run()
    repo = env.repo()
    entries, chunks = cache.load_state(env.cfg.cache_dir, repo.id)
    assert len(entries) == 300 and chunks
    by_pack: dict[str, list[str]] = {}
    for cid, pack in chunks.items():
        by_pack.setdefault(pack, []).append(cid)
    old = json.dumps({"v": 2, "repo": repo.id, "chunks": by_pack, "entries": entries})
    cache.save_bytes(env.cfg.cache_dir, repo.id, compress.compress_meta(old.encode()))

    compact, chunks2 = cache.load_compact(env.cfg.cache_dir, repo.id)
    assert chunks2 == chunks
    assert {t: json.loads(v) for t, v in compact.items()} == entries
    again = env.run()
    assert again.files_unchanged == 300 and again.bytes_read == 0
    # and the run wrote the new layout, which reads the same
    assert cache.load_state(env.cfg.cache_dir, repo.id) == (entries, chunks)


def test_manifest_text_reads_entries_one_by_one_in_any_member_order() -> None:
    text = ('{ "entries" : [ ["d", "/v", 493, 0, 0, 1, 2, 0, null] ,\n["l","/v/x",511,0,0,1,2,0,'
            '"y"]], "v": 1, "paths": ["/v"] }')
    assert list(snapshot.ManifestText(text).entries()) == [
        ["d", "/v", 493, 0, 0, 1, 2, 0, None], ["l", "/v/x", 511, 0, 0, 1, 2, 0, "y"]]
    assert list(snapshot.ManifestText('{"v":1,"entries":[]}').entries()) == []


def test_restore_from_the_manifest_text_still_refuses_escaping_paths(env: Env) -> None:
    """Anyone with the public key can seal a snapshot: the streamed restore checks every path
    (and symlinks created later in the manifest) before it writes anything."""
    repo = env.repo()
    public = env.options().public_key
    for name, entries in {
        "dotdot": [["d", "/v", 0o755, 0, 0, 1, 1, 0, None],
                   ["f", "/v/../../escaped", 0o644, 0, 0, 1, 1, 0, []]],
        "through-a-later-link": [["d", "/v", 0o755, 0, 0, 1, 1, 0, None],
                                 ["f", "/v/l/evil", 0o644, 0, 0, 1, 1, 0, []],
                                 ["l", "/v/l", 0o777, 0, 0, 1, 1, 0, "/elsewhere"]],
    }.items():
        header = {"time": f"2026-01-0{len(name) % 9 + 1}T00:00:00+00:00", "host": name,
                  "files": 1, "bytes": 0, "repo": repo.id}
        data = snapshot.encode(header, {"v": 1, "paths": ["/v"], "entries": entries}, public, [])
        sid = repo.write_snapshot(data)
        target = env.tmp / f"out-{name}"
        code = env.cli("restore", sid, "--target", str(target), "--config", str(env.cfg_file),
                       *env.keyargs())
        assert code != 0
        assert not target.exists() or not any(target.iterdir())
        assert not (env.tmp / "escaped").exists()
