"""A crafted snapshot cannot make `secroom backup restore` (or a drill) write outside its target.

Anyone holding the operators' *public* key (every gateway, and whoever reads the repository's
config) can seal a valid snapshot, so the manifest's paths are untrusted input. Each case
seals a manifest with one hostile entry, runs the real CLI and checks that the restore is
refused (exit 4) and that nothing appeared or changed outside the target."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backup import crypto, snapshot
from backup.drill import drill
from tests.backup.conftest import Env, Recorder

Entry = list[Any]


def _sealed_with(env: Env, mutate: Callable[[list[Entry], Entry], list[Entry]]) -> str:
    """Back up the vault, then write a second snapshot whose manifest is ``mutate``d."""
    (env.vault / "doc.txt").write_text("vault content\n")
    assert env.cli("run", "--config", str(env.cfg_file)) == 0
    repo = env.repo()
    [name] = repo.snapshot_names()
    snap = repo.read_snapshot(name)
    manifest = snapshot.open_manifest(snap, env.key)
    [doc] = [e for e in manifest["entries"] if e[1].endswith("/doc.txt")]
    manifest["entries"] = mutate(list(manifest["entries"]), doc)
    header = {
        "time": snap.header.time,
        "host": snap.header.host,
        "files": snap.header.files,
        "bytes": snap.header.bytes,
        "repo": snap.header.repo,
    }
    public = crypto.load_public_key(env.cfg.public_key_file)
    return repo.write_snapshot(snapshot.encode(header, manifest, public, snap.packs))


def _restore(env: Env, sid: str, target: Path) -> tuple[int, Recorder]:
    rec = Recorder()
    code = env.cli(
        "restore",
        sid,
        "--target",
        str(target),
        "--repo",
        str(env.cfg.repository),
        *env.keyargs(),
        emit=rec,
    )
    return code, rec


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_size)
    return out


def _outside(env: Env) -> Path:
    d = env.tmp / "outside"
    d.mkdir()
    (d / "keep.txt").write_text("must not change\n")
    d.chmod(0o700)
    return d


def _target(env: Env) -> Path:
    return env.tmp / "restore" / "deep" / "target"


def _file_at(doc: Entry, path: str) -> Entry:
    return [snapshot.FILE, path, *doc[2:]]


@pytest.mark.parametrize(
    "path",
    [
        "/../escaped.txt",
        "/../../escaped.txt",
        "/vault/../../escaped.txt",
        "../escaped.txt",
        "/./../escaped.txt",
    ],
)
def test_dotdot_entries_are_refused(env: Env, path: str) -> None:
    sid = _sealed_with(env, lambda entries, doc: [*entries, _file_at(doc, path)])
    before = _tree(env.tmp)
    target = _target(env)
    code, rec = _restore(env, sid, target)
    assert code == 4
    assert [k for k, _ in rec.events] == ["backup.failed"]
    assert rec.events[0][1]["error"] == "integrity"
    assert path not in str(rec.events)  # the event never names paths
    after = _tree(env.tmp)
    assert {p for p in after if not p.startswith(str(target))} == set(before)
    assert not list(env.tmp.rglob("escaped.txt"))


def test_file_through_a_restored_symlink_is_refused(env: Env) -> None:
    outside = _outside(env)

    def evil(entries: list[Entry], doc: Entry) -> list[Entry]:
        link = [snapshot.LINK, "/vault/link", 0o777, 0, 0, 0, 0, 0, str(outside)]
        return [
            *entries,
            link,
            _file_at(doc, "/vault/link/planted.txt"),
            _file_at(doc, "/vault/link/keep.txt"),
        ]

    sid = _sealed_with(env, evil)
    code, _ = _restore(env, sid, _target(env))
    assert code == 4
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert (outside / "keep.txt").read_text() == "must not change\n"


def test_directory_metadata_through_a_restored_symlink_is_refused(env: Env) -> None:
    outside = _outside(env)

    def evil(entries: list[Entry], doc: Entry) -> list[Entry]:
        link = [snapshot.LINK, "/vault/l2", 0o777, 0, 0, 0, 0, 0, str(outside)]
        # a directory entry of the same name: restore would chmod the link's target
        return [*entries, link, [snapshot.DIR, "/vault/l2", 0o777, 0, 0, 0, 0, 0, None]]

    sid = _sealed_with(env, evil)
    code, _ = _restore(env, sid, _target(env))
    assert code == 4
    assert outside.stat().st_mode & 0o777 == 0o700


def test_absolute_symlink_targets_are_restored_as_links_not_followed(env: Env) -> None:
    """A legitimate vault may hold a symlink to an absolute path: it is restored as a link."""
    outside = _outside(env)
    (env.vault / "abs-link").symlink_to(outside)
    (env.vault / "doc.txt").write_text("vault content\n")
    assert env.cli("run", "--config", str(env.cfg_file)) == 0
    target = _target(env)
    code, _ = _restore(env, "latest", target)
    assert code == 0
    restored = target / str(env.vault).lstrip("/")
    assert os.readlink(restored / "abs-link") == str(outside)
    assert (restored / "doc.txt").read_text() == "vault content\n"
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]


def test_drill_refuses_a_crafted_snapshot_too(env: Env) -> None:
    sid = _sealed_with(
        env,
        lambda entries, doc: (
            [e for e in entries if e is not doc] + [_file_at(doc, "/../../../drill-escape.txt")]
        ),
    )
    scratch = env.tmp / "scratch" / "a" / "b"
    scratch.mkdir(parents=True)
    from backup.errors import IntegrityError

    with pytest.raises(IntegrityError):
        drill(env.repo(), env.key, sid, sample=5, scratch=scratch)
    assert not list(env.tmp.rglob("drill-escape.txt"))
