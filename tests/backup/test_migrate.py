"""`backup migrate` converts a format 1 repository (chunk ids in clear) to format 2 without
any private key, keeps every snapshot restorable, carries the gateway's cache over (the next
run uploads nothing) and survives being killed half-way.

The format 1 repository is written here from the format 1 spec (FORMAT.md, "Format 1"), with
the engine's own crypto primitives: one chunk per file, like a vault of small files."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from pathlib import Path
from typing import Any

import pytest

from backup import cache, compress, crypto, snapshot
from backup.errors import ConfigError, IntegrityError
from backup.migrate import migrate
from backup.repo import Repository, config_bytes
from tests.backup.conftest import Env, fill_vault, tree_state

ENTRY = struct.Struct(">32sHQQIIB")


def _v1_pack(root: Path, public: bytes, chunks: list[tuple[bytes, bytes]]) -> tuple[str, bytes]:
    eph, key = crypto.new_group_key(public, b"pack")
    sealer = crypto.Sealer(key)
    body, entries = b"SRPK\x01\0\0\0", []
    for seq, (cid, data) in enumerate(chunks):
        packed = compress.maybe_compress(data, 3)
        payload, flags = (data, 0) if packed is None else (packed, 1)
        blob = sealer.seal(seq, payload, cid + struct.pack(">BI", flags, len(data)))
        entries.append(ENTRY.pack(cid, 0, seq, len(body), len(blob), len(data), flags))
        body += blob
    trailer = b"".join(entries) + eph
    body += trailer + struct.pack(">IHI4s", len(chunks), 1, len(trailer) + 14, b"SRPE")
    pid = hashlib.sha256(body).hexdigest()
    (root / "packs" / pid[:2]).mkdir(parents=True, exist_ok=True)
    (root / "packs" / pid[:2] / pid).write_bytes(body)
    return pid, eph + struct.pack(">I", len(chunks)) + b"".join(entries)


def write_v1(env: Env, runs: int = 2) -> list[str]:
    """A format 1 repository and gateway cache of the vault, one snapshot per run (the vault
    gains a file between runs). Returns the snapshot names."""
    public = crypto.load_public_key(env.cfg.public_key_file)
    dedup = env.dedup_key()
    repo = Repository.init(env.cfg.repository, public, dedup)
    root = repo.root
    (root / "config").write_bytes(config_bytes({**repo.config, "v": 1}))
    stored: set[bytes] = set()
    names = []
    for run in range(runs):
        (env.vault / f"run_{run}.txt").write_text(f"added by run {run}\n" * 50)
        entries: list[list[Any]] = []
        new: list[tuple[bytes, bytes]] = []
        files: dict[str, list[Any]] = {}
        for dirpath, dirs, names_ in os.walk(env.vault):
            dirs.sort()
            for name in [None, *sorted(names_)]:
                path = dirpath if name is None else os.path.join(dirpath, name)
                data = b"" if name is None else Path(path).read_bytes()  # before lstat: atime
                st = os.lstat(path)
                meta = [path, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_atime_ns,
                        st.st_mtime_ns]
                if name is None:
                    entries.append(["d", *meta, 0, None])
                    continue
                cid = crypto.chunk_id(dedup, data)
                if cid not in stored:
                    stored.add(cid)
                    new.append((cid, data))
                chunks = [[0, len(data), cid.hex()]]
                entries.append(["f", *meta, len(data), chunks])
                files[crypto.keyed_tag(dedup, path)] = [st.st_size, st.st_mtime_ns,
                                                        st.st_ctime_ns, st.st_ino, chunks]
        pid, section = _v1_pack(root, public, new)
        index = b"SRIX\x01\0\0\0" + struct.pack(">I", 1) + bytes.fromhex(pid) + (
            struct.pack(">H", 1) + section)
        (root / "index" / hashlib.sha256(index).hexdigest()).write_bytes(index)
        header = json.dumps({"time": f"2026-05-0{run + 1}T17:00:00+00:00", "host": "gw1",
                             "files": len(files), "bytes": 0, "repo": repo.id},
                            sort_keys=True, separators=(",", ":")).encode()
        refs = b"".join(sorted({bytes.fromhex(c[2]) for e in entries if e[0] == "f"
                                for c in e[8]}))
        manifest = json.dumps({"v": 1, "paths": [str(env.vault)], "entries": entries}).encode()
        sealed = crypto.seal_to(public, b"snapshot", compress.compress_meta(manifest),
                                hashlib.sha256(header + refs).digest())
        snap = b"SRSN\x01\0\0\0" + struct.pack(">I", len(header)) + header + struct.pack(
            ">I", len(refs) // 32) + refs + sealed
        names.append(hashlib.sha256(snap).hexdigest())
        (root / "snapshots" / names[-1]).write_bytes(snap)
        env.cfg.cache_dir.mkdir(parents=True, exist_ok=True)
        doc = json.dumps({"v": 1, "repo": repo.id, "entries": files})
        cache.cache_path(env.cfg.cache_dir, repo.id).write_bytes(
            compress.compress_meta(doc.encode()))
    orphan = root / "packs" / "ab" / ("ab" + "0" * 62)  # an interrupted run's leftover
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"SRPK\x01\0\0\0unfinished")
    return names


def _restore_latest(env: Env, target: Path) -> None:
    assert env.cli("restore", "latest", "--target", str(target), "--config", str(env.cfg_file),
                   *env.keyargs()) == 0


def test_migrate_keeps_every_snapshot_and_the_gateway_cache(env: Env) -> None:
    fill_vault(env.vault, files=10, big=0)
    old_names = write_v1(env)
    with pytest.raises(ConfigError, match="migrate"):
        Repository.open(env.cfg.repository)
    assert env.cli("run", "--config", str(env.cfg_file)) == 8  # refuses, says what to do
    dedup = env.dedup_key()
    ids = [crypto.chunk_id(dedup, p.read_bytes()) for p in env.vault.rglob("*") if p.is_file()]
    raw = b"".join(p.read_bytes() for p in env.cfg.repository.rglob("*") if p.is_file())
    assert all(cid in raw for cid in ids)  # format 1: in clear
    assert env.cli("migrate", "--config", str(env.cfg_file)) == 0  # no key given
    repo = Repository.open(env.cfg.repository)
    assert len(repo.snapshot_names()) == len(old_names)
    assert not set(repo.snapshot_names()) & set(old_names)
    assert not (env.cfg.repository / "migrate-v1").exists()
    raw = b"".join(p.read_bytes() for p in env.cfg.repository.rglob("*") if p.is_file())
    assert not any(cid in raw or cid.hex().encode() in raw for cid in ids)
    assert env.cli("verify", "--read-data", "--config", str(env.cfg_file), *env.keyargs()) == 0
    _restore_latest(env, env.tmp / "r1")
    assert tree_state(env.tmp / "r1" / str(env.vault).lstrip("/")) == tree_state(env.vault)
    first = repo.snapshots()[0]
    assert len(snapshot.open_manifest(first, env.key)["entries"]) < len(
        snapshot.open_manifest(repo.snapshots()[-1], env.key)["entries"])
    nxt = env.run()  # the converted cache: nothing read, nothing uploaded
    assert nxt.bytes_new == 0 and nxt.bytes_read == 0 and nxt.files_unchanged == nxt.files
    assert env.cli("migrate", "--config", str(env.cfg_file)) == 0  # a second time: a no-op


def test_a_killed_migration_starts_over_and_completes(env: Env,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fill_vault(env.vault, files=6, big=0)
    write_v1(env, runs=2)
    calls = []
    real = snapshot.encode_sealed

    def dies_on_second(*a: Any, **k: Any) -> bytes:
        calls.append(1)
        if len(calls) == 2:
            raise IntegrityError("killed")
        return real(*a, **k)

    monkeypatch.setattr(snapshot, "encode_sealed", dies_on_second)
    with pytest.raises(IntegrityError):
        migrate(env.cfg.repository, env.cfg.cache_dir)
    monkeypatch.undo()
    with pytest.raises(ConfigError):  # still format 1 (the switch is the last step)
        Repository.open(env.cfg.repository)
    assert (env.cfg.repository / "migrate-v1").is_dir()
    res = migrate(env.cfg.repository, env.cfg.cache_dir)
    assert len(res.snapshots) == 2 and res.packs == 2 and res.packs_dropped == 1
    assert env.cli("verify", "--read-data", "--config", str(env.cfg_file), *env.keyargs()) == 0
    _restore_latest(env, env.tmp / "r")
    assert tree_state(env.tmp / "r" / str(env.vault).lstrip("/")) == tree_state(env.vault)
