"""Fixtures for the backup engine tests: keys, a small vault, a gateway config, helpers."""

from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from backup import crypto
from backup.cli import add_subcommands, load_dedup_key
from backup.config import BackupConfig
from backup.repo import Repository
from backup.run import RunOptions, RunResult, backup
from controller.events import payload_error

PASSPHRASE = "correct horse battery staple"  # noqa: S105 - a test key


@dataclass
class Recorder:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, kind: str, data: BaseModel) -> None:
        refused = payload_error(kind, data)  # the node runtime's check: the kind's own model
        if refused is not None:
            raise AssertionError(refused)
        self.events.append((kind, data.model_dump(mode="json")))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


@dataclass
class Env:
    tmp: Path
    vault: Path
    cfg: BackupConfig
    cfg_file: Path
    key_file: Path
    pass_file: Path
    key: crypto.PrivateKey

    def dedup_key(self) -> bytes:
        return load_dedup_key(self.cfg.dedup_key_file, create=True)

    def repo(self) -> Repository:
        if not (self.cfg.repository / "config").exists():
            public = crypto.load_public_key(self.cfg.public_key_file)
            return Repository.init(self.cfg.repository, public, self.dedup_key())
        return Repository.open(self.cfg.repository)

    def options(self, **kw: Any) -> RunOptions:
        return RunOptions(vault_paths=self.cfg.vault_paths,
                          public_key=crypto.load_public_key(self.cfg.public_key_file),
                          dedup_key=self.dedup_key(), cache_dir=self.cfg.cache_dir,
                          excludes=self.cfg.excludes, threads=2, **kw)

    def run(self, now: datetime | None = None, **kw: Any) -> RunResult:
        repo = self.repo()
        with repo.locked("run"):
            return backup(repo, self.options(**kw), now or datetime.now(UTC))

    def cli(self, *argv: str, emit: Recorder | None = None) -> int:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers(dest="command", required=True)
        add_subcommands(sub)
        args = parser.parse_args(list(argv))
        return int(args.handler(args, emit or Recorder()))

    def keyargs(self) -> list[str]:
        return ["--key", str(self.key_file), "--passphrase-file", str(self.pass_file)]


@pytest.fixture(scope="session")
def operator_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, crypto.PrivateKey]:
    d = tmp_path_factory.mktemp("keys")
    key = crypto.generate_keypair()
    (d / "backup.key").write_bytes(crypto.private_key_file(key, PASSPHRASE.encode(), n=2**12))
    (d / "backup.pub").write_text(crypto.public_key_text(key.public))
    return d, key


def write_config(path: Path, cfg: BackupConfig) -> None:
    lines = ["[backup]"]
    for name, value in cfg.model_dump(mode="json").items():
        if isinstance(value, dict):
            continue
        if isinstance(value, list):
            lines.append(f"{name} = [{', '.join(repr(str(v)) for v in value)}]")
        elif isinstance(value, bool):
            lines.append(f"{name} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f"{name} = {value}")
        else:
            lines.append(f"{name} = {str(value)!r}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def env(tmp_path: Path, operator_key: tuple[Path, crypto.PrivateKey]) -> Env:
    keydir, key = operator_key
    vault = tmp_path / "vault"
    vault.mkdir()
    cfg = BackupConfig(repository=tmp_path / "repo", vault_paths=[vault],
                       public_key_file=keydir / "backup.pub",
                       dedup_key_file=tmp_path / "gateway" / "dedup.key",
                       cache_dir=tmp_path / "gateway" / "cache", pack_size_mb=1, threads=2)
    cfg_file = tmp_path / "secroom.toml"
    write_config(cfg_file, cfg)
    pass_file = tmp_path / "passphrase"
    pass_file.write_text(PASSPHRASE + "\n")
    return Env(tmp_path, vault, cfg, cfg_file, keydir / "backup.key", pass_file, key)


def fill_vault(vault: Path, seed: int = 1, *, files: int = 40, big: int = 2,
               big_size: int = 2 << 20) -> None:
    """Small compressible files, a few incompressible MB, nested folders, Japanese names."""
    import random

    rng = random.Random(seed)
    for i in range(files):
        d = vault / f"dept_{i % 4}" / ("社員" if i % 3 == 0 else "misc")
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file_{i:03d}_山田.csv").write_text(
            "".join(f"{i},{rng.randrange(10**6)},給与,{j}\n" for j in range(rng.randrange(1, 400))),
            encoding="utf-8")
    for i in range(big):
        size = rng.randrange(big_size // 2, big_size * 3 // 2)
        (vault / f"scan_{i}.bin").write_bytes(rng.randbytes(size))


def tree_state(root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything a byte-identical restore must keep: type, mode, times, size, content."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("l", os.readlink(p), st.st_mtime_ns)
            elif os.path.isdir(p):
                out[rel] = ("d", st.st_mode, st.st_mtime_ns)
            else:
                out[rel] = ("f", st.st_mode, st.st_mtime_ns, st.st_atime_ns, st.st_size,
                            sparse_digest(p))
    return out


def sparse_digest(path: str, window: int = 1 << 20) -> str:
    """SHA-256 over the content in aligned 1 MiB windows, reading only windows that hold data
    (holes read as zeros), so a 5 GiB sparse file hashes in no time. All-zero windows are
    skipped, so the digest does not depend on where the file system keeps holes."""
    h = hashlib.sha256()
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        pos, done = 0, -1
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            for w in range(max(start // window, done + 1), (end + window - 1) // window):
                block = os.pread(fd, window, w * window)
                if block.count(0) != len(block):
                    h.update(w.to_bytes(8, "big") + block)
                done = w
            pos = end
    finally:
        os.close(fd)
    h.update(size.to_bytes(8, "big"))
    return h.hexdigest()


Emitter = Callable[[str, Any], None]
