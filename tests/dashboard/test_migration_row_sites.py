"""Migration b4e6a8c0d2f5 on a database with people, groups, doors and printers: every row
takes the configured site (``secroom db upgrade`` passes it), or without one the only site with
settings; memberships and rights are untouched; a later row made without a site takes the one
site too. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from dashboard.db import make_engine, make_sessionmaker
from dashboard.migrate import diff, upgrade
from dashboard.models import Person
from tests.support.postgres import create_schema, drop_schema, schema_url

BEFORE = "a9c3e5b7d1f2"
TABLES = ("people", "groups", "doors", "printers")


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.sqlite3'}"
        return
    pg_url = request.getfixturevalue("pg_url")
    schema = create_schema(pg_url, "rowsites")
    try:
        yield schema_url(pg_url, schema)
    finally:
        drop_schema(pg_url, schema)


def _old_rows(url: str, settings_site: str | None) -> None:
    upgrade(url, BEFORE)
    engine = make_engine(url)
    with engine.begin() as c:
        c.execute(text("INSERT INTO people (id, name, active, operator_ids, cups_users, "
                       "host_accounts, created_at) VALUES ('p1', '佐藤 花子', true, '[]', '[]', "
                       "'[]', '2026-12-01 00:00:00')"))
        c.execute(text("INSERT INTO groups (id, name, on_holidays, hosts, host_admin) VALUES "
                       "('g1', '担当', false, '[]', false)"))
        c.execute(text("INSERT INTO doors (id, name, two_person, two_person_window_s, "
                       "anti_passback, require_verified) VALUES ('d1', 'サーバー室', false, 10, "
                       "false, false)"))
        c.execute(text("INSERT INTO printers (id, name) VALUES ('pr1', '複合機')"))
        c.execute(text("INSERT INTO group_members (group_id, person_id) VALUES ('g1', 'p1')"))
        c.execute(text("INSERT INTO group_doors (group_id, door_id) VALUES ('g1', 'd1')"))
        if settings_site:
            c.execute(text("INSERT INTO site_settings (site, timezone, lockdown, lockdown_doors, "
                           "policy_dirty) VALUES (:s, 'Asia/Tokyo', false, '[]', false)"),
                      {"s": settings_site})
    engine.dispose()


def _sites(url: str) -> dict[str, set[str]]:
    engine = make_engine(url)
    with engine.connect() as c:
        got = {t: set(c.execute(text(f"SELECT site FROM {t}")).scalars())  # noqa: S608
               for t in TABLES}
        got["members"] = {f"{g}:{p}" for g, p in c.execute(
            text("SELECT group_id, person_id FROM group_members"))}
    engine.dispose()
    return got


def test_existing_rows_take_the_configured_site(url: str) -> None:
    _old_rows(url, settings_site="lab")
    upgrade(url, site="osaka")  # as `secroom db upgrade` does, from the configuration
    got = _sites(url)
    assert got == {"people": {"osaka"}, "groups": {"osaka"}, "doors": {"osaka"},
                   "printers": {"osaka"}, "members": {"g1:p1"}}
    assert diff(url) == []


def test_without_a_configured_site_rows_take_the_only_site_with_settings(url: str) -> None:
    _old_rows(url, settings_site="lab")
    upgrade(url)
    assert _sites(url)["people"] == {"lab"} and _sites(url)["doors"] == {"lab"}
    sm = make_sessionmaker(make_engine(url))
    with sm.begin() as s:  # a row made later without naming its site: the one site
        s.add(Person(id="p2", name="新人", operator_ids=[], cups_users=[], host_accounts=[],
                     created_at=datetime(2026, 12, 2, tzinfo=UTC)))
    with sm() as s:
        assert s.get(Person, "p2").site == "lab"
