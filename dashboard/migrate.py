"""Database migrations (Alembic), called by `secroom db upgrade` and by tests.

``upgrade(url)`` brings any database (empty or older) to the current schema; ``diff(url)``
lists what differs between the database and the models (empty when they match).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import dashboard.models  # noqa: F401 - registers every table on Base.metadata
from dashboard.db import Base, make_engine

HERE = Path(__file__).resolve().parent


class MigrationError(Exception):
    """The database could not be migrated (the message names the cause)."""


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (default: the newest)."""
    try:
        command.upgrade(alembic_config(database_url), revision)
    except Exception as exc:
        raise MigrationError(f"database upgrade to {revision} failed: {exc}") from exc


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current(database_url: str) -> str | None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def diff(database_url: str) -> list[Any]:
    """Differences between the database schema and the models (autogenerate's view)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def revision(database_url: str, message: str) -> None:
    """Developer helper: autogenerate a new revision against an up-to-date database."""
    command.revision(alembic_config(database_url), message=message, autogenerate=True)
