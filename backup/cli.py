"""`secroom backup ...` subcommands (also `python -m backup ...`).

Exit codes (also in README.md):
  0 success · 1 unexpected error · 2 usage error · 3 repository locked by a live process ·
  4 integrity problem (verify found damage, restore/drill met corrupt data or a mismatch) ·
  5 wrong key or passphrase · 6 disk full · 7 other I/O error · 8 configuration or key file
  problem · 9 snapshot or repository not found · 10 snapshot written but some vault entries
  could not be read (named on stderr, counted in the event)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup import crypto, events, snapshot
from backup.config import BackupConfig, load_config
from backup.errors import BackupError, ConfigError
from backup.events import Emit
from backup.memory import tune_allocator
from backup.passphrase import read_passphrase
from backup.repo import Repository

DEFAULT_CONFIG = Path(os.environ.get("SECROOM_CONFIG", "/etc/secroom/gateway.toml"))
EXIT_SKIPPED = 10


def _config(args: argparse.Namespace) -> BackupConfig:
    cfg = getattr(args, "backup_config", None)
    if isinstance(cfg, BackupConfig):
        return cfg
    return load_config(Path(args.config) if args.config else DEFAULT_CONFIG)


def _repo_path(args: argparse.Namespace) -> Path:
    if getattr(args, "repo", None):
        return Path(args.repo)
    return _config(args).repository


def _private_key(args: argparse.Namespace) -> crypto.PrivateKey:
    return crypto.load_private_key(Path(args.key), read_passphrase(args.passphrase_file))


def _out(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load_dedup_key(path: Path, *, create: bool) -> bytes:
    try:
        raw = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError as exc:
        if not create:
            raise ConfigError(f"dedup key file {path} not found; copy it back from the "
                              "gateway's safe copy (the repository cannot be extended "
                              "without it)") from exc
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(raw.hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return raw
    except (OSError, ValueError) as exc:
        raise ConfigError(f"dedup key file {path} is unreadable or not 64 hex digits") from exc
    if len(raw) != 32:
        raise ConfigError(f"dedup key file {path} must hold 32 bytes (64 hex digits)")
    return raw


def open_for_writing(root: Path, public_key_file: Path,
                     dedup_key_file: Path) -> tuple[Repository, bytes, bytes]:
    """The repository a writer adds to (created with a new dedup key on the first run), its
    public key and dedup key, both checked against it. Used by the gateway's run and by the
    dashboard's database backup."""
    public = crypto.load_public_key(public_key_file)
    if (root / "config").exists():
        repo = Repository.open(root)
        dedup = load_dedup_key(dedup_key_file, create=False)
    else:
        dedup = load_dedup_key(dedup_key_file, create=True)
        repo = Repository.init(root, public, dedup)
    repo.check_public_key(public)
    repo.check_dedup_key(dedup)
    return repo, public, dedup


def _guard(stage: str, fn: Callable[[argparse.Namespace, Emit], int]
           ) -> Callable[[argparse.Namespace, Emit], int]:
    def handler(args: argparse.Namespace, emit: Emit) -> int:
        t0 = time.monotonic()
        tune_allocator()
        try:
            return fn(args, emit)
        except BackupError as exc:
            _err(f"backup {stage}: {exc}")
            if stage in ("run", "prune", "purge", "restore", "verify", "drill"):
                emit("backup.failed", events.BackupFailed.model_validate(dict(
                    stage=stage, error=exc.kind, message=exc.public, exit_code=exc.exit_code,
                    duration_s=round(time.monotonic() - t0, 3))))
            return exc.exit_code
        except KeyboardInterrupt:
            _err(f"backup {stage}: interrupted")
            return 130
        except Exception as exc:  # a bug: still tell the dashboard this night failed
            traceback.print_exc()
            if stage in ("run", "prune", "purge", "restore", "verify", "drill"):
                emit("backup.failed", events.BackupFailed.model_validate(dict(
                    stage=stage, error="error", message=f"unexpected {type(exc).__name__}",
                    exit_code=1, duration_s=round(time.monotonic() - t0, 3))))
            return 1

    handler.__name__ = f"handle_{stage}"
    return handler


# --- handlers --------------------------------------------------------------------------------


def _keygen(args: argparse.Namespace, emit: Emit) -> int:
    out = Path(args.out)
    priv, pub = out / "backup.key", out / "backup.pub"
    if (priv.exists() or pub.exists()) and not args.force:
        raise ConfigError(f"{priv} or {pub} exists; refusing to overwrite (use --force)")
    passphrase = read_passphrase(args.passphrase_file, confirm=True)
    key = crypto.generate_keypair()
    out.mkdir(parents=True, exist_ok=True)
    data = crypto.private_key_file(key, passphrase, n=args.scrypt_n)
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    pub.write_text(crypto.public_key_text(key.public), encoding="ascii")
    _out(f"private key (keep it OFF the gateway, with its passphrase): {priv}\n"
         f"public key (copy to the gateway, public_key_file): {pub}\n"
         f"fingerprint: {crypto.fingerprint(key.public)}")
    return 0


def _run(args: argparse.Namespace, emit: Emit) -> int:
    from backup.run import RunOptions, backup

    cfg = _config(args)
    started = datetime.now(UTC)
    repo, public, dedup = open_for_writing(cfg.repository, cfg.public_key_file,
                                           cfg.dedup_key_file)
    opts = RunOptions(vault_paths=cfg.vault_paths, public_key=public, dedup_key=dedup,
                      cache_dir=cfg.cache_dir, excludes=cfg.excludes, threads=cfg.threads,
                      small_file_workers=cfg.small_file_workers,
                      pack_size=cfg.pack_size_mb << 20, level=cfg.compression_level)
    with repo.locked("run"):
        res = backup(repo, opts, started)
    for line in res.skipped_paths:
        _err(f"skipped: {line}")
    emit("backup.snapshot", events.BackupSnapshot(
        snapshot_id=res.snapshot_id, started=started.isoformat(timespec="seconds"),
        duration_s=round(res.duration_s, 3), files=res.files, dirs=res.dirs,
        symlinks=res.symlinks, files_new=res.files_new, files_changed=res.files_changed,
        files_unchanged=res.files_unchanged, files_removed=res.files_removed,
        bytes_total=res.bytes_total, bytes_read=res.bytes_read, bytes_new=res.bytes_new,
        bytes_stored=res.bytes_stored, repo_bytes=repo.size(), skipped=res.skipped,
        paths=[str(p) for p in cfg.vault_paths] if cfg.events_include_paths else None))
    _out(f"snapshot {res.snapshot_id[:12]}: {res.files} files, {res.bytes_total} bytes, "
         f"{res.bytes_new} new, {res.bytes_stored} stored, {res.duration_s:.2f}s")
    return EXIT_SKIPPED if res.skipped else 0


def _list(args: argparse.Namespace, emit: Emit) -> int:
    repo = Repository.open(_repo_path(args))
    snaps = repo.snapshots()
    if args.json:
        _out(json.dumps([{"id": s.header.id, "time": s.header.time, "host": s.header.host,
                          "files": s.header.files, "bytes": s.header.bytes,
                          "tag": s.header.tag} for s in snaps]))
        return 0
    for s in snaps:
        tag = f"  [{s.header.tag}]" if s.header.tag else ""
        _out(f"{s.header.id[:12]}  {s.header.time}  {s.header.host}  "
             f"{s.header.files} files  {s.header.bytes} bytes{tag}")
    return 0


def _verify(args: argparse.Namespace, emit: Emit) -> int:
    from backup.verify import verify

    if args.read_data and not args.key:
        raise ConfigError("--read-data needs --key FILE (the operators' private key)")
    key = _private_key(args) if args.key else None
    root = _repo_path(args)
    if key is not None:
        Repository.open(root).check_private_key(key)
    with Repository.open(root).locked("verify"):
        rep = verify(root, key)
    for p in rep.problems:
        _err(f"PROBLEM: {p}")
    for n in rep.notes:
        _err(f"note: {n}")
    emit("backup.verified", events.BackupVerified(
        mode="read_data" if key else "structure", result="ok" if rep.ok else "failed",
        duration_s=round(rep.duration_s, 3), packs=rep.packs, snapshots=rep.snapshots,
        blobs=rep.blobs, bytes_checked=rep.bytes_checked, problems=len(rep.problems)))
    _out(f"verify ({'read-data' if key else 'structure'}): {rep.packs} packs, "
         f"{rep.snapshots} snapshots, {len(rep.problems)} problem(s)")
    return 0 if rep.ok else 4


def _restore(args: argparse.Namespace, emit: Emit) -> int:
    from backup.restore import restore

    key = _private_key(args)
    repo = Repository.open(_repo_path(args))
    repo.check_private_key(key)
    sid = repo.resolve(args.snapshot, getattr(args, "tag", None))
    manifest = snapshot.open_manifest_text(repo.read_snapshot(sid), key)
    include = None
    if args.include:
        from backup.gc import _under

        include = lambda p: any(_under(p, i) for i in args.include)  # noqa: E731
    res = restore(repo.root, repo.load_index(), key, manifest, Path(args.target), include=include,
                  keep_special_bits=args.keep_special_bits)
    _out(f"restored {sid[:12]}: {res.files} files, {res.dirs} dirs, {res.symlinks} links, "
         f"{res.bytes} bytes into {args.target}")
    return 0


def _prune(args: argparse.Namespace, emit: Emit) -> int:
    from backup import gc

    cfg = None
    if not getattr(args, "repo", None) or args.keep_daily is None:
        cfg = _config(args)
    ret = cfg.retention if cfg else None
    daily = args.keep_daily if args.keep_daily is not None else (ret.keep_daily if ret else 0)
    weekly = args.keep_weekly if args.keep_weekly is not None else (ret.keep_weekly if ret else 0)
    monthly = (args.keep_monthly if args.keep_monthly is not None
               else (ret.keep_monthly if ret else 0))
    tz = cfg.timezone if cfg else args.timezone
    repo = Repository.open(Path(args.repo) if args.repo else cfg.repository)  # type: ignore[union-attr]
    key = _private_key(args) if args.key else None  # with it, also dead blobs in live packs
    try:
        with repo.locked("prune"):
            res = gc.prune(repo, daily=daily, weekly=weekly, monthly=monthly, tz=tz, key=key)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    emit("backup.pruned", _pruned("prune", res, repo))
    _out(f"prune: removed {res.snapshots_removed} snapshot(s), kept {res.snapshots_kept}, "
         f"deleted {res.packs_deleted} pack(s), freed {res.bytes_freed} bytes")
    return 0


def _pruned(mode: str, res: Any, repo: Repository) -> events.BackupPruned:
    return events.BackupPruned(
        mode=mode, duration_s=round(res.duration_s, 3),  # type: ignore[arg-type]
        snapshots_removed=res.snapshots_removed, snapshots_kept=res.snapshots_kept,
        snapshots_changed=[f"{a[:12]}->{b[:12]}" for a, b in res.snapshots_changed],
        packs_deleted=res.packs_deleted, packs_rewritten=res.packs_rewritten,
        blobs_removed=res.blobs_removed, bytes_freed=res.bytes_freed, repo_bytes=repo.size())


def _purge(args: argparse.Namespace, emit: Emit) -> int:
    from backup import gc

    key = _private_key(args)
    repo = Repository.open(_repo_path(args))
    path = os.path.abspath(args.path)
    with repo.locked("purge"):
        res = gc.purge(repo, key, path)
    for old, new in res.snapshots_changed:
        _out(f"changed snapshot {old[:12]} -> {new[:12]}")
    _out(f"purge: {len(res.snapshots_changed)} snapshot(s) changed, {res.blobs_removed} "
         f"blob(s) and {res.packs_deleted} pack(s) removed")
    if os.path.lexists(path):
        _err(f"warning: {path} still exists here; if this is the gateway, delete it from the "
             "vault too or the next run backs it up again")
    emit("backup.pruned", _pruned("purge", res, repo))
    return 0


def _migrate(args: argparse.Namespace, emit: Emit) -> int:
    from backup.migrate import migrate

    if args.repo:  # off the gateway: no cache to carry over
        root, cache_dir = Path(args.repo), None
    else:
        cfg = _config(args)
        root, cache_dir = cfg.repository, cfg.cache_dir
    res = migrate(root, cache_dir)
    if res.already:
        _out(f"{root} is already format 2")
        return 0
    for old, new in res.snapshots:
        _out(f"snapshot {old[:12]} -> {new[:12]}")
    _out(f"migrate: {res.packs} pack(s) and {len(res.snapshots)} snapshot(s) now format 2, "
         f"{res.packs_dropped} unindexed pack(s) dropped")
    if res.cache_entries < 0:
        _err("note: no gateway cache was converted (--repo); the gateway's next run reads and "
             "uploads the whole vault once")
    return 0


def _drill(args: argparse.Namespace, emit: Emit) -> int:
    from backup.drill import drill

    key = _private_key(args)
    repo = Repository.open(_repo_path(args))
    repo.check_private_key(key)
    sid = repo.resolve(args.snapshot, getattr(args, "tag", None))
    with repo.locked("drill"):
        res = drill(repo, key, sid, sample=args.sample)
    for p in res.mismatch_paths:
        _err(f"MISMATCH: {p}")
    emit("backup.verified", events.BackupVerified(
        mode="drill", result="ok" if not res.mismatches else "failed",
        duration_s=round(res.duration_s, 3), files_sampled=res.files_sampled,
        mismatches=res.mismatches, bytes_checked=res.bytes, snapshot_id=sid))
    _out(f"drill {sid[:12]}: {res.files_sampled} files restored, "
         f"{res.compared_with_vault} compared with the vault, {res.mismatches} mismatch(es)")
    return 0 if not res.mismatches else 4


# --- parser ----------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser, *, repo: bool = True) -> None:
    p.add_argument("--config", help=f"TOML with a [backup] section (default {DEFAULT_CONFIG})")
    if repo:
        p.add_argument("--repo", help="repository folder (instead of the config's)")


def _tagged(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tag", help="with 'latest': the newest snapshot of this series "
                                 "(dashboard: the dashboard's database; default: the vault)")


def _keyed(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--key", required=required, help="operators' private key file")
    p.add_argument("--passphrase-file", type=Path,
                   help="file holding the key's passphrase (else $SECROOM_BACKUP_PASSPHRASE, "
                        "else a prompt)")


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("keygen", help="make the operators' key pair (run OFF the gateway)")
    p.add_argument("--out", required=True, help="folder for backup.key and backup.pub")
    p.add_argument("--force", action="store_true", help="overwrite existing key files")
    p.add_argument("--passphrase-file", type=Path)
    p.add_argument("--scrypt-n", type=int, default=crypto.DEFAULT_SCRYPT_N, help=argparse.SUPPRESS)
    p.set_defaults(handler=_guard("keygen", _keygen))

    p = sub.add_parser("run", help="take a snapshot of the vault now")
    _common(p, repo=False)
    p.set_defaults(handler=_guard("run", _run))

    p = sub.add_parser("list", help="list snapshots (no key needed)")
    _common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_guard("list", _list))

    p = sub.add_parser("verify", help="check every pack (with --read-data --key: decrypt all)")
    _common(p)
    p.add_argument("--read-data", action="store_true")
    _keyed(p, required=False)
    p.set_defaults(handler=_guard("verify", _verify))

    p = sub.add_parser("restore", help="restore a snapshot into an empty folder")
    _common(p)
    p.add_argument("snapshot", help="snapshot id (or a unique prefix, or 'latest')")
    p.add_argument("--target", required=True)
    p.add_argument("--include", action="append", help="restore only this path (repeatable)")
    p.add_argument("--keep-special-bits", action="store_true",
                   help="also restore setuid and setgid bits (dropped by default)")
    _tagged(p)
    _keyed(p, required=True)
    p.set_defaults(handler=_guard("restore", _restore))

    p = sub.add_parser("prune", help="apply retention and remove unreferenced data")
    _common(p)
    p.add_argument("--keep-daily", type=int)
    p.add_argument("--keep-weekly", type=int)
    p.add_argument("--keep-monthly", type=int)
    p.add_argument("--timezone", default="Asia/Tokyo")
    _keyed(p, required=False)
    p.set_defaults(handler=_guard("prune", _prune))

    p = sub.add_parser("purge", help="remove a path from every snapshot (deletion duty)")
    _common(p)
    p.add_argument("path")
    _keyed(p, required=True)
    p.set_defaults(handler=_guard("purge", _purge))

    p = sub.add_parser("migrate", help="convert a format 1 repository to format 2 (no key)")
    _common(p)
    p.set_defaults(handler=_guard("migrate", _migrate))

    p = sub.add_parser("drill", help="restore a random sample and compare hashes")
    _common(p)
    p.add_argument("--snapshot", default="latest")
    p.add_argument("--sample", type=int, default=20)
    _tagged(p)
    _keyed(p, required=True)
    p.set_defaults(handler=_guard("drill", _drill))
