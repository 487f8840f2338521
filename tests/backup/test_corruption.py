"""200 random single-byte corruptions and truncations of repository files: each one is found
by `verify` (no key needed), and none is silently restored."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from backup import snapshot
from backup.errors import BackupError, KeyError_
from backup.repo import Repository
from backup.restore import restore
from backup.verify import verify
from tests.backup.conftest import Env, Recorder, fill_vault, tree_state


def repo_files(root: Path) -> list[Path]:
    return sorted(p for sub in ("packs", "index", "snapshots") for p in (root / sub).rglob("*")
                  if p.is_file()) + [root / "config"]


def test_every_corruption_is_detected_and_never_restored(env: Env) -> None:
    fill_vault(env.vault, files=20, big=3, big_size=400_000)
    env.run()
    (env.vault / "dept_0" / "new.csv").write_text("x,1\n" * 5000)
    env.run()
    root = env.cfg.repository
    assert verify(root).ok
    files = repo_files(root)
    assert len(files) >= 6
    expected = tree_state(env.vault)
    latest = Repository.open(root).snapshots()[-1].header.id
    rng = random.Random(6)
    restored_ok = refused = 0
    for trial in range(200):
        victim = rng.choice(files)
        original = victim.read_bytes()
        if trial % 2:
            pos = rng.randrange(len(original))
            damaged = bytearray(original)
            damaged[pos] ^= rng.randrange(1, 256)
            victim.write_bytes(bytes(damaged))
        else:
            victim.write_bytes(original[:rng.randrange(len(original))])
        try:
            report = verify(root)
            assert not report.ok, f"trial {trial}: damage to {victim.name} not detected"
            target = env.tmp / f"restore-{trial}"
            try:
                repo = Repository.open(root)
                manifest = snapshot.open_manifest(repo.read_snapshot(latest), env.key)
                restore(repo.root, repo.load_index(), env.key, manifest, target)
            except BackupError:
                refused += 1
            else:
                # restore may only succeed when the damage missed every byte it needed
                got = tree_state(target / str(env.vault).lstrip("/"))
                assert got == expected, f"trial {trial}: corrupt data restored silently"
                restored_ok += 1
            shutil.rmtree(target, ignore_errors=True)
        finally:
            victim.write_bytes(original)
    assert refused > 50
    assert verify(root, env.key).ok


def test_read_data_verify_catches_what_only_the_key_sees(env: Env) -> None:
    fill_vault(env.vault, files=5, big=1)
    env.run()
    assert verify(env.cfg.repository, env.key).ok


def test_wrong_passphrase_and_wrong_key_are_clear_errors(env: Env, tmp_path: Path) -> None:
    fill_vault(env.vault, files=3, big=0)
    env.run()
    bad_pass = tmp_path / "bad"
    bad_pass.write_text("not the passphrase\n")
    rec = Recorder()
    out = tmp_path / "o"
    code = env.cli("restore", "latest", "--target", str(out), "--config", str(env.cfg_file),
                   "--key", str(env.key_file), "--passphrase-file", str(bad_pass), emit=rec)
    assert code == KeyError_.exit_code
    assert rec.events[-1][0] == "backup.failed" and rec.events[-1][1]["error"] == "key"
    # another operator key pair
    from backup import crypto

    other = crypto.generate_keypair()
    other_file = tmp_path / "other.key"
    other_file.write_bytes(crypto.private_key_file(other, b"pw", n=2**12))
    pw = tmp_path / "pw"
    pw.write_text("pw\n")
    for argv in (["restore", "latest", "--target", str(out)], ["verify", "--read-data"],
                 ["drill"]):
        code = env.cli(*argv, "--config", str(env.cfg_file), "--key", str(other_file),
                       "--passphrase-file", str(pw))
        assert code == KeyError_.exit_code, argv
    with pytest.raises(KeyError_, match="wrong passphrase"):
        crypto.load_private_key(env.key_file, b"nope")
    assert not out.exists() or not any(out.iterdir())
