"""Drill, list, events and the CLI surface."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from backup.cli import add_subcommands
from tests.backup.conftest import Env, Recorder, fill_vault


def test_subcommands_registered_with_handlers() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_subcommands(sub)
    for name in ("keygen", "run", "list", "verify", "restore", "prune", "purge", "drill"):
        assert callable(sub.choices[name].get_default("handler")), name


def test_drill_restores_a_sample_and_compares(env: Env) -> None:
    fill_vault(env.vault, files=20, big=1)
    env.run()
    rec = Recorder()
    assert env.cli("drill", "--sample", "8", "--config", str(env.cfg_file), *env.keyargs(),
                   emit=rec) == 0
    kind, data = rec.events[-1]
    assert kind == "backup.verified" and data["mode"] == "drill" and data["result"] == "ok"
    assert data["files_sampled"] == 8 and data["mismatches"] == 0
    # a vault file silently changed behind the backup's back (same size and mtime) is caught
    victim = sorted(env.vault.rglob("*.csv"))[0]
    st = victim.stat()
    data_bytes = bytearray(victim.read_bytes())
    data_bytes[0] ^= 1
    victim.write_bytes(bytes(data_bytes))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    rec = Recorder()
    code = env.cli("drill", "--sample", "100", "--config", str(env.cfg_file), *env.keyargs(),
                   emit=rec)
    assert code == 4 and rec.events[-1][1]["mismatches"] == 1


def test_run_event_has_counts_but_no_names(env: Env, capsys: object) -> None:
    fill_vault(env.vault, files=10, big=1)
    rec = Recorder()
    assert env.cli("run", "--config", str(env.cfg_file), emit=rec) == 0
    (kind, data), = rec.events
    assert kind == "backup.snapshot"
    assert data["files"] == 11 and data["bytes_new"] > 0 and data["paths"] is None
    text = json.dumps(data, ensure_ascii=False)
    assert "山田" not in text and str(env.vault) not in text
    rec = Recorder()
    assert env.cli("verify", "--config", str(env.cfg_file), emit=rec) == 0
    assert rec.events[-1][0] == "backup.verified" and rec.events[-1][1]["mode"] == "structure"
    assert env.cli("list", "--config", str(env.cfg_file), "--json") == 0


def test_failed_run_emits_backup_failed(env: Env) -> None:
    env.cfg_file.write_text(env.cfg_file.read_text().replace(
        str(env.cfg.public_key_file), str(env.tmp / "missing.pub")))
    rec = Recorder()
    assert env.cli("run", "--config", str(env.cfg_file), emit=rec) == 8
    (kind, data), = rec.events
    assert kind == "backup.failed" and data["stage"] == "run" and data["error"] == "config"
    assert "missing.pub" not in data["message"]


def test_keygen_writes_protected_key(tmp_path: object) -> None:
    from pathlib import Path

    out = Path(str(tmp_path)) / "k"
    pw = Path(str(tmp_path)) / "pw"
    pw.write_text("a long passphrase\n")
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_subcommands(sub)
    args = parser.parse_args(["keygen", "--out", str(out), "--passphrase-file", str(pw),
                              "--scrypt-n", "4096"])
    assert args.handler(args, Recorder()) == 0
    assert (out / "backup.key").stat().st_mode & 0o777 == 0o600
    assert b"a long passphrase" not in (out / "backup.key").read_bytes()
    assert args.handler(args, Recorder()) == 8  # refuses to overwrite


def test_missing_vault_is_a_failure_not_an_empty_snapshot(env: Env) -> None:
    fill_vault(env.vault, files=2, big=0)
    assert env.cli("run", "--config", str(env.cfg_file)) == 0
    env.vault.rename(env.tmp / "unmounted")
    rec = Recorder()
    assert env.cli("run", "--config", str(env.cfg_file), emit=rec) == 7
    (kind, data), = rec.events
    assert kind == "backup.failed" and data["message"] == "a vault path is missing"
    assert env.cli("list", "--config", str(env.cfg_file)) == 0


def test_unexpected_error_still_emits_failed(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    import backup.run

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("bug")

    fill_vault(env.vault, files=1, big=0)
    monkeypatch.setattr(backup.run, "backup", boom)
    rec = Recorder()
    assert env.cli("run", "--config", str(env.cfg_file), emit=rec) == 1
    (kind, data), = rec.events
    assert kind == "backup.failed" and data["error"] == "error"


def test_unreadable_file_is_named_counted_and_left_out(env: Env,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import backup.uploader

    fill_vault(env.vault, files=4, big=0)
    victim = sorted(env.vault.rglob("*.csv"))[1]
    real = backup.uploader.read_small

    def flaky(path: str, size: int) -> bytes:
        if path == str(victim):
            raise PermissionError(13, "Permission denied")
        return real(path, size)

    monkeypatch.setattr(backup.uploader, "read_small", flaky)
    rec = Recorder()
    assert env.cli("run", "--config", str(env.cfg_file), emit=rec) == 10
    (kind, data), = rec.events
    assert kind == "backup.snapshot" and data["skipped"] == 1 and data["files"] == 3
    monkeypatch.undo()
    from backup import snapshot
    from backup.repo import Repository

    repo = Repository.open(env.cfg.repository)
    paths = [e[1] for e in snapshot.open_manifest(repo.snapshots()[-1], env.key)["entries"]]
    assert str(victim) not in paths and len([p for p in paths if p.endswith(".csv")]) == 3
    # the next run reads it (nothing about it was cached)
    rec = Recorder()
    assert env.cli("run", "--config", str(env.cfg_file), emit=rec) == 0
    assert rec.events[-1][1]["files"] == 4 and rec.events[-1][1]["files_new"] == 1
