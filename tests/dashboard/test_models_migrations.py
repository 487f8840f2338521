"""`secroom db upgrade` on an empty database yields exactly the models' schema."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from dashboard.db import Base, make_engine
from dashboard.migrate import current, diff, head, upgrade
from tests.support.postgres import create_schema, drop_schema, schema_url


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
def test_upgrade_empty_postgres_matches_models(pg_url: str) -> None:
    schema = create_schema(pg_url, "m")
    url = schema_url(pg_url, schema)
    try:
        upgrade(url)
        assert current(url) == head()
        assert diff(url) == []
    finally:
        drop_schema(pg_url, schema)
