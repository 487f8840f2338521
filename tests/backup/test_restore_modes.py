"""Restore does not recreate setuid/setgid bits unless asked, and never changes the mode or
owner of an existing --target folder (trust-boundaries finding 9, backup part).

A snapshot can be sealed by anyone holding the operators' public key, so a restore run as
root must not plant a setuid-root program or open up the folder it was told to write into."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from backup import crypto, restore, snapshot
from tests.backup.conftest import Env


def _restore(env: Env, target: Path, *extra: str, sid: str = "latest") -> int:
    return env.cli("restore", sid, "--target", str(target), "--config", str(env.cfg_file),
                   *env.keyargs(), *extra)


def test_setuid_and_setgid_are_dropped_unless_asked(env: Env) -> None:
    tool = env.vault / "tool.sh"
    tool.write_text("#!/bin/sh\nid\n")
    os.chmod(tool, 0o6755)  # noqa: S103 - the bits under test
    shared = env.vault / "shared"
    shared.mkdir()
    os.chmod(shared, 0o2775)  # noqa: S103
    assert stat.S_IMODE(tool.stat().st_mode) == 0o6755
    assert env.cli("run", "--config", str(env.cfg_file)) == 0
    plain = env.tmp / "plain"
    assert _restore(env, plain) == 0
    got = plain / str(env.vault).lstrip("/")
    assert stat.S_IMODE((got / "tool.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((got / "shared").stat().st_mode) == 0o775
    kept = env.tmp / "kept"
    assert _restore(env, kept, "--keep-special-bits") == 0
    got = kept / str(env.vault).lstrip("/")
    assert stat.S_IMODE((got / "tool.sh").stat().st_mode) == 0o6755
    assert stat.S_IMODE((got / "shared").stat().st_mode) == 0o2775


def _seal_with_root_entry(env: Env) -> str:
    """A snapshot whose manifest also holds an entry for "/" (the target itself), world-writable
    and owned by someone else, as a hostile sealer (anyone with the public key) could write."""
    (env.vault / "doc.txt").write_text("vault content\n")
    assert env.cli("run", "--config", str(env.cfg_file)) == 0
    repo = env.repo()
    [name] = repo.snapshot_names()
    snap = repo.read_snapshot(name)
    manifest: dict[str, Any] = snapshot.open_manifest(snap, env.key)
    manifest["entries"].insert(0, [snapshot.DIR, "/", 0o6777, 4321, 4321, 0, 0, 0, None])
    header = {"time": snap.header.time, "host": snap.header.host, "files": snap.header.files,
              "bytes": snap.header.bytes, "repo": snap.header.repo}
    public = crypto.load_public_key(env.cfg.public_key_file)
    return repo.write_snapshot(snapshot.encode(header, manifest, public, snap.packs))


def test_an_existing_target_keeps_its_mode_and_owner(env: Env) -> None:
    sid = _seal_with_root_entry(env)
    target = env.tmp / "existing"
    target.mkdir()
    os.chmod(target, 0o700)
    before = target.stat()
    assert _restore(env, target, sid=sid[:12]) == 0
    after = target.stat()
    assert stat.S_IMODE(after.st_mode) == 0o700
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert (target / str(env.vault).lstrip("/") / "doc.txt").read_text() == "vault content\n"
    # a target the restore creates itself may take the entry's mode, never the special bits
    fresh = env.tmp / "fresh" / "target"
    assert _restore(env, fresh, sid=sid[:12]) == 0
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o777


def test_every_folder_is_made_before_the_first_file(env: Env, monkeypatch: Any) -> None:
    """Folders first, files after (as restic does): made one by one between the files, they
    cost ext4 without a journal up to 4x the restore's system time right after a large delete."""
    from tests.backup.conftest import fill_vault, tree_state

    fill_vault(env.vault, files=24, big=1, big_size=1 << 16)
    (env.vault / "only_links" / "deep").mkdir(parents=True)
    os.symlink("../../scan_0.bin", env.vault / "only_links" / "deep" / "scan")
    assert env.cli("run", "--config", str(env.cfg_file)) == 0
    target = env.tmp / "out"
    calls: list[tuple[str, str]] = []
    real_mkdir, real_open, real_symlink = os.mkdir, os.open, os.symlink

    def mkdir(path: Any, *a: Any, **kw: Any) -> None:
        calls.append(("folder", os.fspath(path)))
        real_mkdir(path, *a, **kw)

    def open_(path: Any, flags: int, *a: Any, **kw: Any) -> int:
        if flags & os.O_CREAT and os.fspath(path).startswith(os.fspath(target)):
            calls.append(("file", os.fspath(path)))
        return real_open(path, flags, *a, **kw)

    def symlink(src: Any, dst: Any, *a: Any, **kw: Any) -> None:
        calls.append(("file", os.fspath(dst)))
        real_symlink(src, dst, *a, **kw)

    monkeypatch.setattr(restore, "BATCH_FILES", 4)  # files are written batch by batch
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "symlink", symlink)
    assert _restore(env, target) == 0
    monkeypatch.undo()
    kinds = [k for k, _ in calls]
    assert kinds.count("folder") >= 10 and "file" in kinds
    assert kinds.index("file") > max(i for i, k in enumerate(kinds) if k == "folder")
    assert tree_state(target / str(env.vault).lstrip("/")) == tree_state(env.vault)
