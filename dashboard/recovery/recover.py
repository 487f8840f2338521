"""``secroom recover``: rebuild the dashboard on a new machine from the repository and the
operators' private key.

Steps: the newest snapshot tagged "dashboard" (or the one named) is restored into a private
temporary folder; its manifest is checked against the files; the database copy is put back
where the (possibly overridden) config says, then migrated to this release's head (a database
newer than this code is refused before anything is written); the sealed secrets are opened
straight into their files (0600), the public TLS files the config names are put back where
missing; what cannot be restored is re-created (a policy key that was left out: a new one, and
every node must then trust it; a missing session pepper: a new one, so API tokens are re-issued);
every web session of the old machine is ended; the recovery is audited and raised as a
``dashboard_recovered`` review item; the config file is written last. The temporary folder
(the database in clear) is removed whatever happens.

After ``secroom dashboard run`` the nodes reconnect: the ingest sees each node's newer events,
asks for the gap since the backup (the node journals keep acknowledged rows for
``retention_days``), and the receipts it signs carry counters above anything the old machine
sent (``dashboard.ingest.marks.next_counter``), so the nodes accept them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import delete

from backup import crypto, snapshot
from backup.repo import Repository
from backup.restore import restore
from dashboard.recovery import bundle
from dashboard.recovery.dump import DumpError
from dashboard.recovery.dump import restore as restore_database
from dashboard.recovery.job import TAG
from dashboard.settings import DashboardSettings, SettingsError, load_settings


class RecoverError(Exception):
    """Recovery stopped; the message says why and what to do."""


@dataclass
class Request:
    repo: Path
    key: crypto.PrivateKey
    config_out: Path
    snapshot: str = "latest"
    data_dir: Path | None = None
    database_url: str | None = None
    force: bool = False
    keep_database: bool = False  # the database lives on (a PostgreSQL server elsewhere)


@dataclass
class Recovered:
    snapshot_id: str
    snapshot_time: str
    config: Path
    settings: DashboardSettings
    schema_from: str | None
    schema_to: str | None
    restored: list[str] = field(default_factory=list)  # secrets and files put back
    recreated: list[str] = field(default_factory=list)  # what had to be made anew
    policy_public_key: str = ""
    rekeyed: bool = False
    sessions_ended: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def _config(text: str, req: Request) -> str:
    """The backed-up config with --data-dir / --database-url applied (paths under the old
    data_dir move with it)."""
    if req.data_dir is None and req.database_url is None:
        return text
    doc: dict[str, Any] = tomllib.loads(text)
    table = doc.setdefault("dashboard", {}) if "dashboard" in doc or not doc else doc
    old = Path(table.get("data_dir", str(DashboardSettings().data_dir)))
    if req.data_dir is not None:
        new = req.data_dir
        table["data_dir"] = str(new)
        for key in ("policy_key_file", "session_secret_file", "artifacts_dir"):
            if key in table and Path(table[key]).is_relative_to(old):
                table[key] = str(new / Path(table[key]).relative_to(old))
        url = table.get("database_url", "")
        prefix = f"sqlite:///{old}/"
        if url.startswith(prefix):
            table["database_url"] = f"sqlite:///{new}/{url.removeprefix(prefix)}"
        backup = table.get("backup")
        if isinstance(backup, dict) and "cache_dir" in backup \
                and Path(backup["cache_dir"]).is_relative_to(old):
            backup["cache_dir"] = str(new / Path(backup["cache_dir"]).relative_to(old))
    if req.database_url is not None:
        table["database_url"] = req.database_url
    return ("# written by `secroom recover` from the backed-up config (comments were not "
            "kept)\n" + tomli_w.dumps(doc))


def _settings(text: str, out: Path) -> DashboardSettings:
    tmp = out.with_name(out.name + ".recovering")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text, encoding="utf-8")
    try:
        return load_settings(tmp)
    except SettingsError as exc:
        raise RecoverError(f"the backed-up config does not load here: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _put(path: Path, data: bytes, mode: int, force: bool) -> None:
    if path.exists() and not force:
        raise RecoverError(f"{path} exists; recover onto a fresh machine (or --force)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".recovering")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _secrets(b: bundle.Bundle, key: crypto.PrivateKey, settings: DashboardSettings,
             force: bool, res: Recovered) -> None:
    from controller import keys

    targets = bundle.secret_paths(settings, all_secrets=True)
    for name in b.manifest["secrets"]:
        data = b.secret(name, key)
        target = targets.get(name)
        if data is None or target is None:
            continue  # the recovered config no longer names it
        _put(target, data, 0o600, force)
        res.restored.append(name)
        if name == "policy_key":  # the public half beside it, as `keys.generate` leaves it
            pub = keys.public_b64(keys.load_private(target).public_key())
            target.with_suffix(target.suffix + ".pub").write_text(pub + "\n")
    for name, target in bundle.public_paths(settings).items():
        data = b.public_file(name)
        if data is not None and not target.exists():
            _put(target, data, 0o644, force)
            res.restored.append(name)


def _recreate(settings: DashboardSettings, res: Recovered, manifest: dict[str, Any],
              repo: Repository, key: crypto.PrivateKey) -> None:
    from controller import keys

    policy_key = settings.policy_key_file
    assert policy_key is not None
    if not policy_key.exists():
        keys.generate(policy_key)
        res.recreated.append("policy_key")
    res.policy_public_key = keys.public_b64(keys.load_private(policy_key).public_key())
    old = manifest.get("policy_public_key")
    res.rekeyed = old is not None and old != res.policy_public_key  # nodes pinned the old one
    secret = settings.session_secret_file
    if secret is not None and not secret.exists():
        settings.session_secret()  # creates it
        res.recreated.append("session_secret")
    backup = settings.backup  # so that tonight's database backup finds its keys
    if backup is not None and not backup.public_key_file.exists():
        _put(backup.public_key_file, crypto.public_key_text(repo.public_key).encode(), 0o644,
             False)
        res.recreated.append("backup_public_key")
    if backup is not None and not backup.dedup_key_file.exists():
        dedup = repo.unseal_dedup_key(key)  # sealed in the repository's config
        _put(backup.dedup_key_file, dedup.hex().encode() + b"\n", 0o600, False)
        res.recreated.append("dedup_key")


def _record(settings: DashboardSettings, res: Recovered, manifest: dict[str, Any],
            now: datetime) -> None:
    from dashboard.anomalies import raise_anomaly
    from dashboard.audit import append_audit
    from dashboard.db import make_engine, make_sessionmaker
    from dashboard.models.auth import Session as WebSession

    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine).begin() as db:
            res.sessions_ended = db.execute(delete(WebSession)).rowcount or 0
            after = {"snapshot": res.snapshot_id, "backed_up_at": manifest["created"],
                     "software_then": manifest["software"], "schema_from": res.schema_from,
                     "schema_to": res.schema_to, "restored": res.restored,
                     "recreated": res.recreated, "policy_public_key": res.policy_public_key}
            append_audit(db, actor="cli", action="dashboard.recovered", target_type="site",
                         target_id=settings.site, before=None, after=after, now=now)
            raise_anomaly(db, "dashboard_recovered", dedupe_key=res.snapshot_id, now=now,
                          severity="critical" if res.rekeyed else "warning",
                          subject="the dashboard was rebuilt from its backup",
                          detail={"backed_up_at": manifest["created"],
                                  "rekeyed": res.rekeyed})
    finally:
        engine.dispose()


def recover(req: Request, now: datetime) -> Recovered:
    from dashboard.migrate import MigrationError, check_known, current, upgrade

    t0 = time.monotonic()
    repo = Repository.open(req.repo)
    repo.check_private_key(req.key)
    sid = repo.resolve(req.snapshot, TAG)
    snap = repo.read_snapshot(sid)
    if snap.header.tag != TAG:
        raise RecoverError(f"snapshot {sid[:12]} is not a dashboard snapshot (tag "
                           f"{snap.header.tag!r}); see `secroom backup list`")
    if req.config_out.exists() and not req.force:
        raise RecoverError(f"{req.config_out} exists; recover onto a fresh machine (or --force)")
    scratch = Path(tempfile.mkdtemp(prefix="secroom-recover-"))  # 0700
    try:
        restore(repo.root, repo.load_index(), req.key, snapshot.open_manifest(snap, req.key),
                scratch / "snapshot")
        t_restore = time.monotonic()
        b = bundle.find(scratch / "snapshot")
        text = _config(b.config_text, req)
        settings = _settings(text, req.config_out)
        if settings.site != b.manifest["site"]:
            raise RecoverError("the backed-up config and its manifest name different sites")
        try:
            if not req.keep_database:
                restore_database(b.kind, b.database, settings.database_url)
        except DumpError as exc:
            raise RecoverError(str(exc)) from exc
        t_db = time.monotonic()
        res = Recovered(snapshot_id=sid, snapshot_time=snap.header.time, config=req.config_out,
                        settings=settings, schema_from=None, schema_to=None)
        try:
            res.schema_from = check_known(settings.database_url)
            upgrade(settings.database_url)
            res.schema_to = current(settings.database_url)
        except MigrationError as exc:
            raise RecoverError(f"{exc} (the restored database is left in place)") from exc
        t_migrate = time.monotonic()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        _secrets(b, req.key, settings, req.force, res)
        _recreate(settings, res, b.manifest, repo, req.key)
        _record(settings, res, b.manifest, now)
        _put(req.config_out, text.encode(), 0o640, req.force)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    end = time.monotonic()
    res.timings = {"restore_s": t_restore - t0, "database_s": t_db - t_restore,
                   "migrate_s": t_migrate - t_db, "total_s": end - t0}
    return res
