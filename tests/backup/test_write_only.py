"""A stolen gateway (config, public key, dedup key, cache, the repository itself) cannot read
any snapshot: a test tries everything it holds as a key."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from backup import cache, crypto, pack, snapshot
from backup.errors import IntegrityError
from backup.index import load
from tests.backup.conftest import Env, fill_vault

MARKER = "マイナンバー123456789018-山田太郎-secret-marker"


def gateway_files(env: Env) -> list[Path]:
    files = [env.cfg_file, env.cfg.public_key_file, env.cfg.dedup_key_file]
    files += [p for p in env.cfg.cache_dir.rglob("*") if p.is_file()]
    return files


def candidate_secrets(env: Env) -> list[bytes]:
    """Every 32-byte value the gateway could try: raw file slices, hex and base64 decodings,
    and hashes/derivations of all of them."""
    blobs = [p.read_bytes() for p in gateway_files(env)]
    blobs.append((env.cfg.repository / "config").read_bytes())
    out: set[bytes] = set()
    for data in blobs:
        text = data.decode("utf-8", "replace")
        for tok in re.findall(r"[0-9a-fA-F]{64}", text):
            out.add(bytes.fromhex(tok))
        for tok in re.findall(r"[A-Za-z0-9_\-]{43}", text):
            try:
                raw = crypto.unb64(tok)
            except ValueError:
                continue
            if len(raw) == 32:
                out.add(raw)
        for i in range(0, max(1, len(data) - 31), 16):
            out.add(data[i:i + 32].ljust(32, b"\0"))
    derived = {crypto.content_hash(x) for x in out} | {crypto.chunk_id(a, b"") for a in out}
    return sorted(out | derived)


def test_gateway_cannot_decrypt_old_snapshots(env: Env) -> None:
    fill_vault(env.vault, files=6, big=1)
    (env.vault / "secret.txt").write_text(MARKER * 50, encoding="utf-8")
    env.run()
    env.run()
    repo = env.repo()
    candidates = candidate_secrets(env)
    assert len(candidates) > 50
    # 1. try each candidate as the operators' X25519 private key
    public = crypto.load_public_key(env.cfg.public_key_file)
    for secret in candidates:
        try:
            fake = crypto.PrivateKey(secret, public)
            opened = crypto.open_group_key(fake, b"\x09" * 32, b"x")
        except (ValueError, IntegrityError):
            continue
        assert opened  # derivation "works" but must not open real objects below
    snaps = [repo.read_snapshot(n) for n in repo.snapshot_names()]
    idx = load(repo.root / "index", env.key)  # the real key only finds a blob to attack
    pid, info = next(iter(idx.packs.items()))
    entry = info.entries[0]
    sealed = (pack.pack_path(repo.root, pid)).read_bytes()[entry.offset:entry.offset + entry.length]
    for secret in candidates:
        fake = crypto.PrivateKey(secret, public)
        for snap in snaps:
            with pytest.raises(IntegrityError):
                snapshot.open_manifest(snap, fake)
            with pytest.raises(IntegrityError):  # nor the chunk ids it uses
                snapshot.open_refs(snap, fake)
        with pytest.raises(IntegrityError):  # nor a pack's list of chunk ids
            pack.open_trailer(fake, idx.sealed[pid])
        # 2. ... as a group key derived with it, and directly as the AES key
        for group_key in (crypto.open_group_key(fake, info.groups[0], pack.PURPOSE), secret):
            with pytest.raises(IntegrityError):
                crypto.Sealer(group_key).open(entry.seq, sealed,
                                              pack.blob_aad(entry.id, entry.flags, entry.raw))
    # 3. the operator's real key does open them (the test would be vacuous otherwise)
    assert snapshot.open_manifest(snaps[0], env.key)["entries"]


def test_nothing_readable_at_rest(env: Env) -> None:
    (env.vault / "社員_山田太郎.txt").write_text(MARKER * 50, encoding="utf-8")
    env.run()
    needles = [MARKER.encode(), "山田太郎".encode(), b"secret-marker", env.vault.name.encode()
               + b"/"]
    for path in itertools.chain(env.cfg.repository.rglob("*"), env.cfg.cache_dir.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                assert needle not in data, f"{needle!r} readable in {path.name}"


def test_cache_holds_nothing_for_deleted_files(env: Env) -> None:
    fill_vault(env.vault, files=6, big=0)
    gone = env.vault / "to_delete_田中.csv"
    gone.write_text("田中,123\n" * 1000, encoding="utf-8")
    env.run()
    repo = env.repo()
    key = env.dedup_key()
    tag = crypto.keyed_tag(key, str(gone))
    cid = crypto.chunk_id(key, gone.read_bytes()).hex()
    entries = cache.load(env.cfg.cache_dir, repo.id)
    assert tag in entries and entries[tag][4][0][2] == cid
    gone.unlink()
    result = env.run()
    assert result.files_removed == 1
    entries = cache.load(env.cfg.cache_dir, repo.id)
    assert tag not in entries
    raw = b"".join(p.read_bytes() for p in env.cfg.cache_dir.rglob("*") if p.is_file())
    text = cache.compress.decompress_meta(raw).decode()
    assert cid not in text and tag not in text
    assert all(e[4] for e in entries.values() if e[0])  # the others are still cached
