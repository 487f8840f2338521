"""Migration f2a7c4e9b1d3 on a database with approved nodes and their events: each gets the
roles its stored kinds show; one with nothing to show stays role-less (refused, never
guessed); a pending node gets none. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from dashboard.db import make_engine
from dashboard.migrate import upgrade
from tests.support.postgres import create_schema, drop_schema, schema_url

NODES = {"gw1": "approved", "pc-01": "approved", "gw1.backup": "approved", "quiet": "approved",
         "new": "pending"}
KINDS = {"gw1": ["door.access", "print.release", "reader.connected", "node.started"],
         "pc-01": ["usb.inserted", "host.logon"], "gw1.backup": ["backup.snapshot"],
         "quiet": ["node.started", "reader.connected"], "new": ["door.access"]}


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.sqlite3'}"
        return
    pg_url = request.getfixturevalue("pg_url")
    schema = create_schema(pg_url, "roles")
    try:
        yield schema_url(pg_url, schema)
    finally:
        drop_schema(pg_url, schema)


def test_roles_inferred_from_stored_kinds(url: str) -> None:
    upgrade(url, "d8b3f0a6c2e1")
    engine = make_engine(url)
    with engine.begin() as c:
        for name, status in NODES.items():
            c.execute(text("INSERT INTO nodes (name, site, key_status, first_seen_at, "
                           "contiguous_seq, max_seq, events_stored, state, health, ack_counter, "
                           "resend_counter) VALUES (:n, 'hq', :s, '2026-12-01 00:00:00', 0, 0, "
                           "0, 'unknown', '{}', 0, 0)"), {"n": name, "s": status})
            for seq, kind in enumerate(KINDS[name], 1):
                c.execute(text("INSERT INTO events (node, seq, kind, ts, received_at, boot, "
                               "clock, data, prev, hash, sig, chain_ok) VALUES (:n, :q, :k, "
                               "'2026-12-01 00:00:00', '2026-12-01 00:00:00', 'b', 'synced', "
                               "'{}', 'p', 'h', 's', :ok)"),
                          {"n": name, "q": seq, "k": kind, "ok": True})
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as c:
        got = dict(c.execute(text("SELECT name, roles FROM nodes")).all())
        since = set(c.execute(text("SELECT key_since_seq FROM nodes")).scalars())
    engine.dispose()
    assert got == {"gw1": "door_gateway,print_station", "pc-01": "host_agent",
                   "gw1.backup": "backup_job", "quiet": "", "new": ""}
    assert since == {1}
