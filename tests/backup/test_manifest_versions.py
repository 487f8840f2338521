"""Manifest versions: version 2 names each chunk by its position in the snapshot's sealed
references (no 64 hex digits per chunk); a version 1 manifest (hex ids, sorted references),
as every repository written before holds, is still restored and verified; a position outside
the references is refused as damage."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from backup import compress, crypto, snapshot
from backup.errors import IntegrityError
from backup.verify import verify
from tests.backup.conftest import Env, tree_state
from tests.backup.test_small_files import small_vault


def _header(snap: snapshot.SnapshotFile, host: str) -> bytes:
    doc = {"time": snap.header.time, "host": host, "files": snap.header.files,
           "bytes": snap.header.bytes, "repo": snap.header.repo}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _seal(env: Env, raw_header: bytes, refs: bytes, manifest: dict[str, Any],
          packs: list[str]) -> str:
    """A snapshot as a hand-made writer would seal it (anyone with the public key can)."""
    public = env.options().public_key
    body = compress.compress_meta(json.dumps(manifest).encode())
    sealed = crypto.seal_to(public, snapshot.PURPOSE, body,
                            hashlib.sha256(raw_header + refs).digest())
    refs_list = [refs[i:i + 32] for i in range(0, len(refs), 32)]
    data = snapshot.encode_sealed(raw_header, refs_list, sealed, public, packs)
    return env.repo().write_snapshot(data)


def test_a_version_1_manifest_is_still_read(env: Env) -> None:
    small_vault(env.vault, 300)
    done = env.run()
    repo = env.repo()
    snap = repo.read_snapshot(done.snapshot_id)
    manifest = snapshot.open_manifest(snap, env.key)
    v1 = {**manifest, "v": 1}  # hex ids, as format 2 wrote them before version 2
    refs = b"".join(sorted(snapshot.manifest_refs(manifest)))
    sid = _seal(env, _header(snap, "old-writer"), refs, v1, snap.packs)
    assert snapshot.open_manifest(repo.read_snapshot(sid), env.key)["entries"] \
        == manifest["entries"]
    report = verify(repo.root, env.key)
    assert report.ok, report.problems
    target = env.tmp / "out"
    assert env.cli("restore", sid, "--target", str(target), "--config", str(env.cfg_file),
                   *env.keyargs()) == 0
    assert tree_state(target / str(env.vault).lstrip("/")) == tree_state(env.vault)


def test_a_chunk_position_outside_the_references_is_refused(env: Env) -> None:
    (env.vault / "a.txt").write_text("one\n")
    (env.vault / "b.txt").write_text("two\n")
    done = env.run()
    repo = env.repo()
    snap = repo.read_snapshot(done.snapshot_id)
    refs = b"".join(snapshot.open_refs(snap, env.key))
    manifest = snapshot.open_manifest(snap, env.key)
    for bad in (2, -1, True, "zz"):
        forged = {**manifest, "entries": [
            [*e[:8], [[0, 4, bad]]] if e[0] == snapshot.FILE else e
            for e in manifest["entries"]]}
        sid = _seal(env, _header(snap, f"forger-{bad}"), refs, forged, snap.packs)
        forged_snap = repo.read_snapshot(sid)
        with pytest.raises(IntegrityError):
            snapshot.open_manifest(forged_snap, env.key)
        with pytest.raises(IntegrityError):
            list(snapshot.open_manifest_text(forged_snap, env.key).entries())
        target = env.tmp / f"out-{bad}"
        assert env.cli("restore", sid, "--target", str(target), "--config",
                       str(env.cfg_file), *env.keyargs()) != 0


def test_version_2_is_smaller_than_hex_ids(env: Env) -> None:
    small_vault(env.vault, 600)
    snap = env.repo().read_snapshot(env.run().snapshot_id)
    manifest = snapshot.open_manifest(snap, env.key)
    hex_body = compress.compress_meta(json.dumps({**manifest, "v": 1},
                                                 separators=(",", ":")).encode())
    assert len(snap.sealed) < 0.75 * len(hex_body)


def test_a_manifest_of_an_unknown_version_is_refused_clearly(env: Env) -> None:
    (env.vault / "a.txt").write_text("one\n")
    snap = env.repo().read_snapshot(env.run().snapshot_id)
    refs = b"".join(snapshot.open_refs(snap, env.key))
    manifest = snapshot.open_manifest(snap, env.key)
    sid = _seal(env, _header(snap, "newer"), refs, {**manifest, "v": 3}, snap.packs)
    newer = env.repo().read_snapshot(sid)
    with pytest.raises(IntegrityError, match="newer secroom"):
        snapshot.open_manifest(newer, env.key)
    with pytest.raises(IntegrityError, match="newer secroom"):
        list(snapshot.open_manifest_text(newer, env.key).entries())
