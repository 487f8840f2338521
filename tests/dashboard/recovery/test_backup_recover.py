"""`secroom dashboard backup` and `secroom recover` on both stores: the database copy is
consistent while the dashboard writes, the snapshot is tagged and readable only with the
operators' key, the secrets stay sealed in anything a plain restore or a drill writes, and
recover puts back the database, the config, the secrets (0600) and re-creates what it must."""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from backup import crypto
from backup.repo import Repository
from controller.envelope import now_utc
from controller.keys import generate
from dashboard import cli
from dashboard.audit import append_audit, verify_audit
from dashboard.db import make_engine, make_sessionmaker
from dashboard.migrate import upgrade
from dashboard.models.anomalies import Anomaly
from dashboard.models.audit import AuditRecord
from dashboard.models.auth import Session as WebSession
from dashboard.models.auth import User
from dashboard.models.recovery import DatabaseBackup
from dashboard.recovery.job import TAG

PASSPHRASE = "recover me"  # noqa: S105 - a test key
SECRETS = {"policy.key", "session.secret", "mqtt.pw", "client.key"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="secroom")
    cli.add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def run(*argv: str) -> int:
    args = parse(list(argv))
    return int(args.func(args))


@dataclass
class Site:
    root: Path
    config: Path
    data: Path
    url: str

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    def keyargs(self) -> list[str]:
        return ["--key", str(self.root / "ops" / "backup.key"), "--passphrase-file",
                str(self.root / "ops" / "passphrase")]


def make_site(root: Path, url: str | None = None, *, include_policy_key: bool = True) -> Site:
    ops = root / "ops"
    ops.mkdir(parents=True)
    key = crypto.generate_keypair()
    (ops / "backup.key").write_bytes(crypto.private_key_file(key, PASSPHRASE.encode(), n=2**12))
    (ops / "backup.pub").write_text(crypto.public_key_text(key.public))
    (ops / "passphrase").write_text(PASSPHRASE + "\n")
    data = root / "data"
    etc = root / "etc"
    etc.mkdir()
    (etc / "mqtt.pw").write_text("broker password of the dashboard\n")
    (etc / "client.key").write_text("-----BEGIN PRIVATE KEY-----\nclient key\n")
    (etc / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nca\n")
    (etc / "client.crt").write_text("-----BEGIN CERTIFICATE-----\nclient\n")
    url = url or f"sqlite:///{data / 'dashboard.sqlite3'}"
    config = etc / "dashboard.toml"
    config.write_text(f"""# the office's dashboard (this comment survives a recovery)
[dashboard]
data_dir = "{data}"
database_url = "{url}"
site = "s1"

[dashboard.mqtt]
port = 8883
username = "dashboard"
password_file = "{etc / 'mqtt.pw'}"

[dashboard.mqtt.tls]
ca_file = "{etc / 'ca.crt'}"
cert_file = "{etc / 'client.crt'}"
key_file = "{etc / 'client.key'}"

[dashboard.backup]
repository = "{root / 'repo'}"
public_key_file = "{ops / 'backup.pub'}"
dedup_key_file = "{root / 'gateway' / 'dedup.key'}"
include_policy_key = {'true' if include_policy_key else 'false'}
""")
    data.mkdir()
    upgrade(url)
    generate(data / "policy.key")
    (data / "session.secret").write_text("s" * 64 + "\n")
    return Site(root, config, data, url)


def seed(url: str) -> None:
    sm = make_sessionmaker(make_engine(url))
    with sm.begin() as db:
        db.add(User(username="admin", display_name="管理者", password_hash="$argon2id$x",  # noqa: S106
                    role="admin", active=True, created_at=now_utc()))
        db.flush()
        user = db.scalar(select(User))
        assert user is not None
        db.add(WebSession(token_hash="a" * 64, csrf_token="b" * 64, user_id=user.id,
                          created_at=now_utc(), last_seen_at=now_utc(), expires_at=now_utc()))
        append_audit(db, actor="admin", action="person.create", target_type="person",
                     target_id="p1", before=None, after={"name": "山田 太郎"}, now=now_utc())
    sm.kw["bind"].dispose()


def lose(site: Site) -> None:
    """The machine is gone (the repository and the operators' key are elsewhere)."""
    shutil.rmtree(site.data)
    shutil.rmtree(site.root / "etc")


def every_file(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_sqlite_backup_then_recover_on_a_new_machine(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site(tmp_path / "old")
    seed(site.url)
    assert run("dashboard", "backup", "--config", str(site.config)) == 0
    assert "policy key sealed" in capsys.readouterr().out
    repo = Repository.open(site.repo)
    [snap] = repo.snapshots()
    assert snap.header.tag == TAG
    engine = make_engine(site.url)
    with make_sessionmaker(engine)() as db:
        row = db.scalar(select(DatabaseBackup))
        assert row is not None and row.result == "ok" and row.snapshot_id == snap.header.id
        assert row.database_bytes > 0 and row.policy_key == "sealed"
    engine.dispose()
    # a drill's plain restore of the snapshot: the database and config, no secret in clear
    drill = tmp_path / "drill"
    from backup.cli import add_subcommands

    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="c", required=True))
    args = parser.parse_args(["restore", "latest", "--tag", TAG, "--repo", str(site.repo),
                              "--target", str(drill), *site.keyargs()])
    assert args.handler(args, lambda *a: None) == 0
    restored = every_file(drill)
    assert b"SQLite format 3" in restored and b"this comment survives" in restored
    for name in SECRETS:
        path = site.data / name if name in ("policy.key", "session.secret") else \
            site.root / "etc" / name
        assert path.read_bytes().strip() not in restored, name
    assert b"PRIVATE KEY" not in every_file(site.repo)

    # the machine is gone: every file of it
    old_etc = {p.name: p.read_bytes() for p in (site.root / "etc").iterdir()}
    old_data = {n: (site.data / n).read_bytes() for n in ("policy.key", "session.secret")}
    for folder in (site.data, site.root / "etc", site.root / "gateway"):
        for p in sorted(folder.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        folder.rmdir()
    (site.root / "ops" / "backup.pub").unlink()
    assert run("recover", "--repo", str(site.repo), *site.keyargs(), "--config-out",
               str(site.config)) == 0
    out = capsys.readouterr().out
    assert "web sessions ended: 1" in out and "THE POLICY KEY IS NEW" not in out
    assert "this comment survives" in site.config.read_text()  # as the operator wrote it
    for name, content in old_etc.items():
        assert (site.root / "etc" / name).read_bytes() == content, name
    for name, content in old_data.items():
        path = site.data / name
        assert path.read_bytes() == content and stat.S_IMODE(path.stat().st_mode) == 0o600
    for name in ("mqtt.pw", "client.key"):
        assert stat.S_IMODE((site.root / "etc" / name).stat().st_mode) == 0o600
    # tonight's backup finds its keys again: the dedup key unsealed from the repository
    assert (site.root / "gateway" / "dedup.key").exists()
    assert (site.root / "ops" / "backup.pub").exists()
    engine = make_engine(site.url)
    with make_sessionmaker(engine)() as db:
        assert db.scalar(select(func.count()).select_from(WebSession)) == 0
        assert db.scalar(select(User.username)) == "admin"
        assert verify_audit(db).ok
        actions = [r.action for r in db.scalars(select(AuditRecord).order_by(AuditRecord.seq))]
        assert actions == ["person.create", "dashboard.recovered"]
        assert db.scalar(select(Anomaly.kind).where(Anomaly.kind == "dashboard_recovered"))
    engine.dispose()
    assert run("dashboard", "backup", "--config", str(site.config)) == 0
    # and a second recovery onto this machine is refused: it would overwrite it
    assert run("recover", "--repo", str(site.repo), *site.keyargs(), "--config-out",
               str(site.config)) == 1
    assert "exists" in capsys.readouterr().err


def test_the_database_copy_is_consistent_while_the_dashboard_writes(tmp_path: Path) -> None:
    site = make_site(tmp_path / "old")
    sm = make_sessionmaker(make_engine(site.url))
    stop, written = threading.Event(), [0]

    def writer() -> None:  # the audit chain: a torn copy would break it
        while not stop.is_set():
            with sm.begin() as db:
                append_audit(db, actor="admin", action="person.update", target_type="person",
                             target_id=f"p{written[0]}", before=None, after={"n": written[0]},
                             now=now_utc())
            written[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written[0] < 50:  # the writer is going
            stop.wait(0.01)
        assert run("dashboard", "backup", "--config", str(site.config)) == 0
        at_end = written[0]
    finally:
        stop.set()
        thread.join()
    sm.kw["bind"].dispose()
    lose(site)
    new = tmp_path / "new"
    assert run("recover", "--repo", str(site.repo), *site.keyargs(), "--config-out",
               str(new / "dashboard.toml"), "--data-dir", str(new / "data")) == 0
    engine = make_engine(f"sqlite:///{new / 'data' / 'dashboard.sqlite3'}")
    with make_sessionmaker(engine)() as db:
        assert verify_audit(db).ok
        copied = db.scalar(select(func.count()).select_from(AuditRecord))
    engine.dispose()
    assert 50 <= copied - 1 <= at_end  # a prefix of what was written (+ the recovery record)


def test_a_left_out_policy_key_is_re_created_and_said_loudly(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site(tmp_path / "old", include_policy_key=False)
    assert run("dashboard", "backup", "--config", str(site.config)) == 0
    assert "policy key left_out" in capsys.readouterr().out
    old_public = (site.data / "policy.key.pub").read_text()
    lose(site)
    new = tmp_path / "new"
    assert run("recover", "--repo", str(site.repo), *site.keyargs(), "--config-out",
               str(new / "dashboard.toml"), "--data-dir", str(new / "data")) == 0
    out = capsys.readouterr().out
    assert "THE POLICY KEY IS NEW" in out
    assert (new / "data" / "policy.key.pub").read_text() != old_public
    engine = make_engine(f"sqlite:///{new / 'data' / 'dashboard.sqlite3'}")
    with make_sessionmaker(engine)() as db:
        item = db.scalar(select(Anomaly).where(Anomaly.kind == "dashboard_recovered"))
        assert item is not None and item.severity == "critical" and item.detail["rekeyed"]
    engine.dispose()


def test_a_failed_backup_is_recorded_and_raised(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site(tmp_path / "old")
    (site.root / "ops" / "backup.pub").unlink()
    assert run("dashboard", "backup", "--config", str(site.config)) == 1
    assert "backup.pub" in capsys.readouterr().err
    engine = make_engine(site.url)
    with make_sessionmaker(engine)() as db:
        row = db.scalar(select(DatabaseBackup))
        assert row is not None and row.result == "failed" and row.error
        item = db.scalar(select(Anomaly).where(Anomaly.kind == "database_backup_failed"))
        assert item is not None and item.severity == "critical"
    engine.dispose()
    assert not (site.data / "backup-staging" / "secroom-dashboard").exists()


def _database(server: str, name: str) -> str:
    admin = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def databases(pg_url: str) -> Iterator[Callable[[str], str]]:
    """Fresh databases on the test server (a whole database: what pg_dump copies)."""
    made: list[str] = []

    def make(name: str) -> str:
        made.append(f"{name}_{os.getpid()}")
        return _database(pg_url, made[-1])

    yield make
    admin = create_engine(pg_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in made:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.integration
def test_postgres_backup_then_recover_into_an_empty_database(
        tmp_path: Path, databases: Callable[[str], str],
        capsys: pytest.CaptureFixture[str]) -> None:
    url = databases("secroom_dr_old")
    site = make_site(tmp_path / "old", url)
    seed(url)
    assert run("dashboard", "backup", "--config", str(site.config)) == 0
    shutil.rmtree(site.root / "etc")
    target = databases("secroom_dr_new")
    new = tmp_path / "new"
    assert run("recover", "--repo", str(site.repo), *site.keyargs(), "--config-out",
               str(new / "dashboard.toml"), "--data-dir", str(new / "data"),
               "--database-url", target) == 0, capsys.readouterr().err
    engine = make_engine(target)
    with make_sessionmaker(engine)() as db:
        assert db.scalar(select(User.username)) == "admin"
        assert verify_audit(db).ok
        assert db.scalar(select(func.count()).select_from(AuditRecord)) == 2
    engine.dispose()
    # the dashboard host dies again, the database server lives on: config and secrets only
    shutil.rmtree(new)
    shutil.rmtree(site.root / "etc")
    assert run("recover", "--repo", str(site.repo), *site.keyargs(), "--config-out",
               str(new / "dashboard.toml"), "--data-dir", str(new / "data"),
               "--database-url", target, "--keep-database") == 0
    assert (new / "data" / "policy.key").exists()
    engine = make_engine(target)
    with make_sessionmaker(engine)() as db:  # kept, with both recoveries audited
        assert db.scalar(select(func.count()).select_from(AuditRecord)) == 3
    engine.dispose()
    # into a database that is not empty: refused, nothing half-restored
    assert run("recover", "--repo", str(site.repo), *site.keyargs(), "--config-out",
               str(tmp_path / "again" / "dashboard.toml"), "--data-dir",
               str(tmp_path / "again" / "data"), "--database-url", url) == 1
    assert "pg_restore failed" in capsys.readouterr().err
    assert not (tmp_path / "again" / "dashboard.toml").exists()
