"""The repository on disk: layout, config, snapshots list, and the run-time write lock.

    config              JSON, written once at init, self-hashed
    packs/xx/<sha256>   pack files
    index/<sha256>      index files
    snapshots/<sha256>  snapshot files
    locks/lock          the exclusive lock
    tmp/                files being written (removed at the next locked start)
    migrate-v1/         only while `migrate` converts a format 1 repository
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup import crypto, index, snapshot
from backup.errors import ConfigError, IntegrityError, KeyError_, NotFoundError
from backup.lock import repository_lock
from backup.storage import io_errors, read, write_atomic

FORMAT = "secroom-backup-repository"
VERSION = 2
DIRS = ("packs", "index", "snapshots", "locks", "tmp")
DEDUP_PURPOSE = b"dedup-key"
MIGRATING = "migrate-v1"


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def dedup_check(dedup_key: bytes) -> str:
    return crypto.chunk_id(dedup_key, b"secroom-backup dedup key check").hex()[:16]


class Repository:
    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        self.config = config
        self.id: str = config["id"]
        self.public_key = crypto.unb64(config["public_key"])

    # --- creation and opening ---------------------------------------------------------------

    @classmethod
    def init(cls, root: Path, public_key: bytes, dedup_key: bytes) -> Repository:
        with io_errors("creating the repository"):
            root.mkdir(parents=True, exist_ok=True)
            if (root / "config").exists():
                raise ConfigError(f"{root} already holds a repository")
            for d in DIRS:
                (root / d).mkdir(exist_ok=True)
        sealed = crypto.seal_to(public_key, DEDUP_PURPOSE, dedup_key, b"")
        doc: dict[str, Any] = {
            "format": FORMAT, "v": VERSION, "id": secrets.token_hex(16),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "public_key": crypto.b64(public_key), "fingerprint": crypto.fingerprint(public_key),
            "cipher": "aes-256-gcm", "chunk_id": "hmac-sha256", "compression": "zstd",
            "chunker": "fastcdc2020 min 256K avg 1M max 8M, keyed gear seed",
            "dedup_check": dedup_check(dedup_key), "sealed_dedup_key": crypto.b64(sealed)}
        data = config_bytes(doc)
        write_atomic(root / "config", data, root / "tmp")
        return cls(root, load_config(data))

    @classmethod
    def open(cls, root: Path) -> Repository:
        path = root / "config"
        if not path.exists():
            raise NotFoundError(f"no repository at {root} (the first `backup run` creates one)")
        config = load_config(read(path))
        if config["v"] != VERSION:
            raise ConfigError(
                f"{root} is a format {config['v']} repository (chunk ids in clear); convert it "
                "once with `secroom backup migrate` (on the gateway, so its cache is kept)",
                public="repository needs `backup migrate`")
        return cls(root, config)

    # --- keys --------------------------------------------------------------------------------

    def check_public_key(self, public_key: bytes) -> None:
        if public_key != self.public_key:
            raise KeyError_(
                f"the configured public key ({crypto.fingerprint(public_key)}) is not this "
                f"repository's ({self.config['fingerprint']}); fix public_key_file")

    def check_dedup_key(self, dedup_key: bytes) -> None:
        if dedup_check(dedup_key) != self.config["dedup_check"]:
            raise KeyError_("the dedup key file does not belong to this repository")

    def check_private_key(self, key: crypto.PrivateKey) -> None:
        if key.public != self.public_key:
            raise KeyError_(
                f"this private key ({crypto.fingerprint(key.public)}) does not open this "
                f"repository (made for {self.config['fingerprint']})")

    def unseal_dedup_key(self, key: crypto.PrivateKey) -> bytes:
        self.check_private_key(key)
        return crypto.open_sealed(key, DEDUP_PURPOSE,
                                  crypto.unb64(self.config["sealed_dedup_key"]), b"")

    # --- objects -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, purpose: str) -> Iterator[None]:
        with repository_lock(self.root / "locks", purpose):
            self.clean_tmp()
            leftover = self.root / MIGRATING  # a finished migration killed before its cleanup
            if self.config["v"] == VERSION and leftover.exists():
                with io_errors("removing what migrate left"):
                    shutil.rmtree(leftover)
            yield

    def clean_tmp(self) -> None:
        """Remove what a killed run left half-written (only ever called under the lock)."""
        with io_errors("cleaning tmp"):
            for p in (self.root / "tmp").iterdir():
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()

    def load_index(self, key: crypto.PrivateKey | None = None) -> index.Index:
        """Pack names and sealed trailers; with the private key also every blob's place."""
        with io_errors("reading the index"):
            return index.load(self.root / "index", key)

    def write_index(self, sealed: dict[str, bytes]) -> str:
        """One index file listing these packs (pack id -> sealed trailer)."""
        data = index.encode(sealed)
        name = hashlib.sha256(data).hexdigest()
        write_atomic(self.root / "index" / name, data, self.root / "tmp")
        return name

    def snapshot_names(self) -> list[str]:
        with io_errors("listing snapshots"):
            return sorted(p.name for p in (self.root / "snapshots").iterdir()
                          if len(p.name) == 64)

    def read_snapshot(self, name: str, *, check_hash: bool = True) -> snapshot.SnapshotFile:
        return snapshot.decode(read(self.root / "snapshots" / name), name, check_hash=check_hash)

    def snapshots(self) -> list[snapshot.SnapshotFile]:
        snaps = [self.read_snapshot(n) for n in self.snapshot_names()]
        return sorted(snaps, key=lambda s: (s.header.time, s.header.id))

    def resolve(self, prefix: str, tag: str | None = None) -> str:
        """A snapshot id from a unique prefix, or ``latest``: the newest with ``tag`` (None:
        the vault's snapshots; "dashboard": the dashboard's database)."""
        if prefix == "latest":
            snaps = [s for s in self.snapshots() if s.header.tag == tag]
            if not snaps:
                what = "no snapshot yet" if tag is None else f"no snapshot tagged {tag!r} yet"
                raise NotFoundError(f"the repository has {what}")
            return snaps[-1].header.id
        matches = [n for n in self.snapshot_names() if n.startswith(prefix.lower())]
        if len(matches) != 1 or len(prefix) < 4:
            raise NotFoundError(f"snapshot {prefix!r} not found or ambiguous "
                                f"({len(matches)} matches); see `backup list`")
        return matches[0]

    def write_snapshot(self, data: bytes) -> str:
        name = snapshot.snapshot_id(data)
        write_atomic(self.root / "snapshots" / name, data, self.root / "tmp")
        return name

    def pack_names(self) -> set[str]:
        """Every pack file present (names only)."""
        with io_errors("listing packs"):
            return {p.name for d in (self.root / "packs").iterdir() if d.is_dir()
                    for p in d.iterdir() if len(p.name) == 64}

    def size(self) -> int:
        total = 0
        with io_errors("measuring the repository"):
            for dirpath, _dirs, files in os.walk(self.root):
                for f in files:
                    with contextlib.suppress(FileNotFoundError):
                        total += os.lstat(os.path.join(dirpath, f)).st_size
        return total


def config_bytes(doc: dict[str, Any]) -> bytes:
    """The config file for ``doc`` (without its hash): the hash is added here."""
    body = {k: v for k, v in doc.items() if k != "hash"}
    body["hash"] = hashlib.sha256(_canonical(body)).hexdigest()
    return json.dumps(body, indent=1, sort_keys=True).encode()


def load_config(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
        claimed = doc.pop("hash")
        ok = doc.get("format") == FORMAT and doc.get("v") in (1, VERSION)
    except (ValueError, AttributeError, KeyError) as exc:
        raise IntegrityError("repository config is corrupt") from exc
    if not ok or hashlib.sha256(_canonical(doc)).hexdigest() != claimed:
        raise IntegrityError("repository config is corrupt (hash mismatch)")
    doc["hash"] = claimed
    return dict(doc)
