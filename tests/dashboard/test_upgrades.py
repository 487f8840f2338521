"""Upgrades: a database made by the previous release's migrations (revision b7c1e0a4d2f9, the
head of the previous wave), filled with representative rows, upgrades to head on SQLite and on
PostgreSQL with every row kept and usable by this release (the schema matches the models, the
signer builds a policy from it, the audit chain still verifies). A database newer than the code
(a revision it does not know) is refused, untouched, by `secroom db upgrade` and by
`secroom dashboard run`; an older one is refused by `dashboard run` until it is upgraded."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, create_engine, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from controller.envelope import GENESIS
from dashboard import cli
from dashboard.audit import record_hash, verify_audit
from dashboard.db import make_engine, make_sessionmaker
from dashboard.migrate import current, diff, head, upgrade
from dashboard.models.nodes import Node
from dashboard.policy_signer import PolicySigner
from tests.support.postgres import create_schema, drop_schema, schema_url

PREVIOUS_RELEASE = "b7c1e0a4d2f9"
T0 = datetime(2026, 11, 20, 0, 30, tzinfo=UTC)


def _at(engine: Engine, when: datetime) -> datetime:
    return when.replace(tzinfo=None) if engine.dialect.name == "sqlite" else when


def _audit_rows(engine: Engine) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for seq, (action, target, after) in enumerate([
            ("person.create", "p1", {"id": "p1", "name": "山田 太郎"}),
            ("card.enrol", "04A1B2C3", {"person": "p1"}),
            ("node.approve", "gw1", {"key_status": "approved"})], start=1):
        at = T0 + timedelta(minutes=seq)
        digest = record_hash(seq=seq, at=at, actor="admin", action=action, target_type="x",
                             target_id=target, before=None, after=after, prev=prev)
        rows.append({"seq": seq, "at": _at(engine, at), "actor": "admin", "action": action,
                     "target_type": "x", "target_id": target, "before": None, "after": after,
                     "prev": prev, "hash": digest})
        prev = digest
    return rows


def fill_previous_release(url: str) -> dict[str, int]:
    """Rows of every kind the previous release stored, written against its own schema."""
    engine = create_engine(url, poolclass=NullPool)
    meta = MetaData()
    meta.reflect(engine)
    at = _at(engine, T0)
    rows: dict[str, list[dict[str, Any]]] = {
        "people": [{"id": "p1", "name": "山田 太郎", "active": True, "operator_ids": ["op1"],
                    "cups_users": ["yamada"], "created_at": at},
                   {"id": "p2", "name": "鈴木 花子", "active": False, "operator_ids": [],
                    "cups_users": [], "created_at": at}],
        "groups": [{"id": "g1", "name": "経理", "on_holidays": False}],
        "doors": [{"id": "server-room", "name": "サーバー室", "two_person": False,
                   "two_person_window_s": 30, "anti_passback": True}],
        "printers": [{"id": "prn1", "name": "複合機"}],
        "group_members": [{"group_id": "g1", "person_id": "p1"}],
        "group_doors": [{"group_id": "g1", "door_id": "server-room"}],
        "group_printers": [{"group_id": "g1", "printer_id": "prn1"}],
        "time_windows": [{"group_id": "g1", "days": [0, 1, 2, 3, 4], "start": time(8, 0),
                          "end": time(19, 0)}],
        "cards": [{"uid": "04A1B2C3", "person_id": "p1", "label": "社員証", "active": True,
                   "enrolled_at": at, "enrolled_by": "admin"}],
        "site_settings": [{"site": "s1", "timezone": "Asia/Tokyo", "lockdown": False,
                           "lockdown_doors": [], "policy_dirty": False}],
        "policy_versions": [{"version": 7, "site": "s1", "issued_at": at, "sha256": "a" * 64,
                             "blob": b"{}", "published_at": at}],
        "nodes": [{"name": "gw1", "site": "s1", "public_key": "k" * 43,
                   "key_status": "approved", "first_seen_at": at, "contiguous_seq": 2,
                   "contiguous_hash": "b" * 64, "max_seq": 2, "max_hash": "b" * 64,
                   "events_stored": 2, "state": "online", "health": {"clock": "synced"},
                   "policy_version": 7}],
        "events": [{"node": "gw1", "seq": s, "kind": "door.access", "ts": at,
                    "received_at": at, "boot": "b1", "clock": "synced", "person_id": "p1",
                    "door": "server-room", "data": {"granted": True}, "prev": GENESIS,
                    "hash": f"{s:064x}", "sig": "s" * 86, "chain_ok": True}
                   for s in (1, 2)],
        "door_access": [{"node": "gw1", "seq": 1, "ts": at, "door": "server-room",
                         "direction": "in", "granted": True, "person_id": "p1",
                         "uid": "04A1B2C3", "reader": "door-in"}],
        "presence": [{"person_id": "p1", "door": "server-room", "entered_at": at,
                      "enter_ref": "gw1:1"}],
        "anomalies": [{"kind": "door_forced", "severity": "critical", "node": "gw1",
                       "subject": "door forced", "detail": {"door": "server-room"},
                       "dedupe_key": "gw1:9", "count": 1, "state": "open",
                       "first_seen_at": at, "last_seen_at": at}],
        "audit_log": _audit_rows(engine),
        "auth_users": [{"id": 1, "username": "admin", "display_name": "管理者",
                        "password_hash": "$argon2id$x", "role": "admin", "language": "ja",
                        "active": True, "created_at": at}],
        "auth_sessions": [{"token_hash": "c" * 64, "csrf_token": "d" * 64, "user_id": 1,
                           "created_at": at, "last_seen_at": at, "expires_at": at,
                           "ip": "127.0.0.1"}],
        "auth_api_tokens": [{"name": "numlog", "prefix": "srk_abcd", "token_hash": "e" * 64,
                             "scopes": "numlog:write", "user_id": 1, "created_at": at}],
        "media": [{"control_number": "USB-001", "vendor_id": "0781", "product_id": "5581",
                   "serial": "SER1", "interfaces": [], "token_digest": "f" * 64,
                   "media_type": "usb", "make": "SanDisk", "model": "Ultra",
                   "capacity": 16_000_000_000, "state": "in_storage", "custodian": "p1",
                   "hosts": ["pc-01"], "read_only": False, "registered_at": at,
                   "registered_by": "admin", "updated_at": at}],
        "media_counters": [{"prefix": "USB", "highest_issued": 1}],
        "media_records": [{"control_number": "USB-001", "action": "register",
                           "to_state": "in_storage", "actor": "admin", "at": at,
                           "details": {}}],
        "numlog_batches": [{"source": "csv", "filename": "log.csv", "file_sha256": "0" * 64,
                            "encoding": "cp932", "preset": "default", "imported_at": at,
                            "imported_by": "admin", "rows_total": 1, "rows_stored": 1,
                            "rows_duplicate": 0, "rows_bad": 0, "rows_redacted": 0,
                            "errors": []}],
        "number_access": [{"row_key": "r1", "source": "csv", "line": 2, "no": "1",
                           "office": "本社", "ts": at, "screen": "照会", "action": "閲覧",
                           "purpose": "給与", "operator": "op1", "result": "成功",
                           "terminal": "T1", "category": "access", "ok": True,
                           "person_id": "p1", "host": "pc-01", "redacted_fields": []}],
    }
    with engine.begin() as conn:
        for name, values in rows.items():
            conn.execute(Table(name, meta).insert(), values)
    counts = {}
    with engine.connect() as conn:
        for name in rows:
            counts[name] = conn.scalar(select(func.count()).select_from(meta.tables[name]))
    engine.dispose()
    return counts


def check_upgraded(url: str, counts: dict[str, int]) -> None:
    assert current(url) == head()
    assert diff(url) == []
    engine = make_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            for name, n in counts.items():
                got = conn.scalar(select(func.count()).select_from(meta.tables[name]))
                assert got == n, name
        sm = make_sessionmaker(engine)
        with sm() as db:
            node = db.get(Node, "gw1")
            assert node is not None and (node.contiguous_seq, node.ack_counter) == (2, 0)
            assert verify_audit(db).ok
            policy = PolicySigner(sm, None, site="s1", publish=None).build(db)  # type: ignore[arg-type]
        assert policy.version == 8  # above the version the previous release issued
        person = policy.person("p1")
        assert person is not None and person.cards == ["04A1B2C3"] and person.groups == ["g1"]
        assert policy.person("p2") is not None and not policy.person("p2").active  # type: ignore[union-attr]
    finally:
        engine.dispose()


def test_upgrade_from_the_previous_release_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(url, PREVIOUS_RELEASE)
    counts = fill_previous_release(url)
    upgrade(url)
    check_upgraded(url, counts)


@pytest.mark.integration
def test_upgrade_from_the_previous_release_on_postgres(pg_url: str) -> None:
    schema = create_schema(pg_url, "upg")
    url = schema_url(pg_url, schema)
    try:
        upgrade(url, PREVIOUS_RELEASE)
        counts = fill_previous_release(url)
        upgrade(url)
        check_upgraded(url, counts)
    finally:
        drop_schema(pg_url, schema)


# -- a database newer than the code -----------------------------------------------------------

def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="secroom")
    cli.add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "dashboard.toml"
    path.write_text(f'[dashboard]\nsite = "s1"\ndata_dir = "{tmp_path / "data"}"\n')
    (tmp_path / "data").mkdir()
    yield path


def _tables(url: str) -> set[str]:
    from sqlalchemy import inspect

    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_database_newer_than_the_code_is_refused_untouched(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{config.parent / 'data' / 'dashboard.sqlite3'}"
    upgrade(url, PREVIOUS_RELEASE)
    engine = make_engine(url)
    with engine.begin() as conn:  # what a newer release's migration would leave
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed0001'"))
    engine.dispose()
    before = _tables(url)
    args = parse(["db", "upgrade", "--config", str(config)])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "f00dfeed0001" in err and "newer release" in err and "Nothing was changed" in err
    assert current(url) == "f00dfeed0001" and _tables(url) == before  # not half-applied
    args = parse(["dashboard", "run", "--config", str(config), "--port", "0"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "f00dfeed0001" in err and "did not start" in err
    assert not (config.parent / "data" / "dashboard.running").exists()


def test_dashboard_run_refuses_an_older_schema_until_upgraded(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{config.parent / 'data' / 'dashboard.sqlite3'}"
    upgrade(url, PREVIOUS_RELEASE)
    args = parse(["dashboard", "run", "--config", str(config), "--port", "0"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert PREVIOUS_RELEASE in err and "secroom db upgrade" in err
    assert current(url) == PREVIOUS_RELEASE
