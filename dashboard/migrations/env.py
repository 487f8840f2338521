"""Alembic environment: the dashboard's metadata, SQLite (batch mode) or PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

import dashboard.models  # noqa: F401 - registers every table on Base.metadata
from dashboard.db import Base, make_engine
from dashboard.models.types import UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("from dashboard.models.types import UTCDateTime")
        return "UTCDateTime()"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    """Run the migrations. On SQLite with foreign keys off: batch mode rebuilds a table by
    copying it and dropping the old one, and with foreign keys on that drop deleted every row
    referring to it through ON DELETE CASCADE (upgrading from the previous release lost every
    API token and session with auth_users' rebuild). Integrity is checked before the end."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction
        connection.commit()
    _configure(connection)
    try:
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migrated database breaks {len(broken)} foreign "
                                       f"key(s), first in table {broken[0][0]}")
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            _migrate(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
