"""Restore is byte-identical: content, modes, times, empty files, symlinks, non-ASCII names,
and a sparse file over 4 GiB (which must also stay fast and sparse)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from backup import snapshot
from backup.restore import restore
from tests.backup.conftest import Env, fill_vault, tree_state


def make_special(vault: Path) -> None:
    (vault / "empty").write_bytes(b"")
    (vault / "空のフォルダ").mkdir()
    (vault / "名前 with spaces ＆ 記号.txt").write_text("マイナンバー取扱台帳\n", encoding="utf-8")
    undecodable = os.path.join(os.fsencode(vault), b"latin1-\xe9t\xe9-\xff.txt")
    with open(undecodable, "wb") as fh:  # not valid UTF-8: kept byte for byte
        fh.write(b"bytes name\n")
    (vault / "exec.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(vault / "exec.sh", 0o750)  # noqa: S103 - a mode to restore
    (vault / "readonly.txt").write_text("ro")
    os.chmod(vault / "readonly.txt", 0o400)
    os.symlink("名前 with spaces ＆ 記号.txt", vault / "link-relative")
    os.symlink("/nonexistent/target", vault / "link-dangling")
    big = vault / "sparse-5g.img"
    with open(big, "wb") as fh:
        fh.truncate(5 * 1024**3 + 123)
        fh.seek(3 * 1024**3)
        fh.write(b"data in the middle of a hole" * 1000)
        fh.seek(5 * 1024**3 + 100)
        fh.write(b"tail")
    (vault / "all-zero-holes").write_bytes(b"")
    os.truncate(vault / "all-zero-holes", 4 * 1024**3 + 1)
    (vault / "zeros-written.bin").write_bytes(bytes(3 << 20) + b"x")
    os.utime(vault / "exec.sh", ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    os.utime(vault / "空のフォルダ", ns=(1_400_000_000_000_000_001, 1_400_000_000_000_000_002))


def test_restore_is_byte_identical(env: Env) -> None:
    fill_vault(env.vault)
    make_special(env.vault)
    before = tree_state(env.vault)
    t0 = time.monotonic()
    first = env.run()
    assert time.monotonic() - t0 < 20, "the sparse files must not be read byte by byte"
    assert first.bytes_read < 20 << 20
    repo = env.repo()
    snap = repo.read_snapshot(first.snapshot_id)
    manifest = snapshot.open_manifest(snap, env.key)
    target = env.tmp / "restored"
    restore(repo.root, repo.load_index(), env.key, manifest, target)
    restored_root = target / str(env.vault).lstrip("/")
    after = tree_state(restored_root)
    assert after == before
    # restored sparse files are sparse again
    st = os.stat(restored_root / "all-zero-holes")
    assert st.st_blocks * 512 < 1 << 20
    st = os.stat(restored_root / "sparse-5g.img")
    assert st.st_size == 5 * 1024**3 + 123 and st.st_blocks * 512 < 16 << 20


def test_cli_restore_matches_and_needs_empty_target(env: Env) -> None:
    fill_vault(env.vault, files=5, big=0)
    make_special(env.vault)
    assert env.cli("run", "--config", str(env.cfg_file)) == 0
    target = env.tmp / "out"
    code = env.cli("restore", "latest", "--target", str(target), "--config", str(env.cfg_file),
                   *env.keyargs())
    assert code == 0
    assert tree_state(target / str(env.vault).lstrip("/")) == tree_state(env.vault)
    again = env.cli("restore", "latest", "--target", str(target), "--config", str(env.cfg_file),
                    *env.keyargs())
    assert again == 7  # refuses to write into a non-empty folder


def test_incremental_reuses_unchanged_files(env: Env) -> None:
    fill_vault(env.vault)
    first = env.run()
    assert first.files_new == first.files and first.bytes_read > 0
    second = env.run()
    assert second.bytes_read == 0 and second.files_unchanged == first.files
    assert second.bytes_new == 0
    victim = next(env.vault.rglob("*.csv"))
    victim.write_text(victim.read_text() + "changed\n")
    third = env.run()
    assert third.files_changed == 1 and third.bytes_read == victim.stat().st_size
    repo = env.repo()
    manifest = snapshot.open_manifest(repo.read_snapshot(third.snapshot_id), env.key)
    target = env.tmp / "r3"
    restore(repo.root, repo.load_index(), env.key, manifest, target)
    assert tree_state(target / str(env.vault).lstrip("/")) == tree_state(env.vault)
