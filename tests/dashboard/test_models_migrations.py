"""`secroom db upgrade` on an empty database yields exactly the models' schema."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import inspect

from dashboard.db import Base, make_engine
from dashboard.migrate import current, diff, head, upgrade
from tests.dashboard.conftest import PG_URL, _drop_pg_schema, _pg_engine


def test_upgrade_empty_sqlite_matches_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url)
    assert current(url) == head()
    assert diff(url) == []
    engine = make_engine(url)
    tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    assert tables == set(Base.metadata.tables)
    upgrade(url)  # idempotent


def test_models_have_auth_tables():
    assert {"auth_users", "auth_sessions", "auth_api_tokens", "auth_login_attempts"} <= set(
        Base.metadata.tables
    )


@pytest.mark.integration
def test_upgrade_empty_postgres_matches_models():
    if not PG_URL:
        from tests.support import unavailable

        unavailable("SECROOM_TEST_PG_URL is not set (PostgreSQL tests need it)")
    schema = f"m_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _pg_engine(schema).dispose()
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    try:
        upgrade(url)
        assert current(url) == head()
        assert diff(url) == []
    finally:
        _drop_pg_schema(schema)
