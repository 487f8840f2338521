"""Bulk inserts for the ingest hot path: COPY on PostgreSQL, one driver executemany on SQLite.

SQLAlchemy's executemany converts every bound value through the column types in Python and, on
psycopg, sends one INSERT per row down a pipeline; at thousands of events a second that is most
of the ingest time. Here each column's conversion is decided once per table and applied to plain
tuples, producing exactly what SQLAlchemy itself stores (SQLite: naive UTC datetimes as
``YYYY-MM-DD HH:MM:SS.ffffff``, JSON as text, booleans as they are: sqlite3 binds them as 0/1),
so the ORM reads the rows back unchanged. Other dialects fall back to SQLAlchemy's executemany.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, Table, insert
from sqlalchemy.orm import Session

from dashboard.models.types import UTCDateTime

Convert = Callable[[Any], Any]


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # beyond orjson (a huge int...): the stdlib, as SQLAlchemy would
        return json.dumps(value)


@lru_cache(maxsize=8192)
def _sqlite_dt(value: datetime | None) -> str | None:
    # cached: an event's time goes into the events row and its door_access row, and a batch's
    # received_at into every row (equal datetimes are the same instant, so the same text)
    if value is None:
        return None
    tz = value.tzinfo
    if tz is not UTC:
        if tz is None:
            raise ValueError("naive datetime given for a UTC column; pass an aware datetime")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # drop "+00:00": stored naive, in UTC


def _pg_dt(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given for a UTC column; pass an aware datetime")
    return value


def _converter(column_type: Any, dialect: str) -> Convert | None:
    if isinstance(column_type, JSON):
        return _json_text
    if isinstance(column_type, UTCDateTime):
        return _sqlite_dt if dialect == "sqlite" else _pg_dt
    return None


def _plan(table: Table, names: Sequence[str], dialect: str) -> list[Convert | None]:
    return [_converter(table.c[name].type, dialect) for name in names]


def _tuples(
    rows: Sequence[dict[str, Any]], names: Sequence[str], plan: Sequence[Convert | None]
) -> list[list[Any]]:
    get = itemgetter(*names)
    convert = [(i, f) for i, f in enumerate(plan) if f is not None]
    out = []
    for row in rows:
        values = list(get(row)) if len(names) > 1 else [get(row)]
        for i, f in convert:
            values[i] = f(values[i])
        out.append(values)
    return out


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, all columns of ``table``) in the session's
    transaction. Constraint violations raise as they would from an INSERT."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect.name
    names = list(rows[0])
    for name in names:
        if name not in table.c:
            raise KeyError(f"{table.name} has no column {name!r}")
    columns = ", ".join(names)
    if dialect == "sqlite":
        marks = ", ".join("?" * len(names))
        raw = conn.connection.driver_connection  # the session's own sqlite3 connection
        assert raw is not None
        raw.executemany(  # names checked against the model's columns above
            f"INSERT INTO {table.name} ({columns}) VALUES ({marks})",  # noqa: S608
            _tuples(rows, names, _plan(table, names, dialect)),
        )
    elif dialect == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
            for values in _tuples(rows, names, _plan(table, names, dialect)):
                copy.write_row(values)
    else:
        conn.execute(insert(table), list(rows))
