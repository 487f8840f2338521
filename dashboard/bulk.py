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
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
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


def _check_names(table: Table, names: Sequence[str]) -> None:
    for name in names:
        if name not in table.c:
            raise KeyError(f"{table.name} has no column {name!r}")


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, all columns of ``table``) in the session's
    transaction. Constraint violations raise as they would from an INSERT."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect.name
    if dialect == "postgresql":
        with row_writer(session, table) as write:
            for row in rows:
                write(row)
        return
    names = list(rows[0])
    _check_names(table, names)
    if dialect == "sqlite":
        marks = ", ".join("?" * len(names))
        raw = conn.connection.driver_connection  # the session's own sqlite3 connection
        assert raw is not None
        raw.executemany(  # names checked against the model's columns above
            f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})",  # noqa: S608
            _tuples(rows, names, _plan(table, names, dialect)),
        )
    else:
        conn.execute(insert(table), list(rows))


@contextmanager
def row_writer(session: Session, table: Table) -> Iterator[Callable[[dict[str, Any]], None]]:
    """``write(row)`` for rows produced one by one, inserted as by ``insert_rows``.

    On PostgreSQL each row goes down a COPY at once (opened at the first row), so the server
    inserts while the caller computes the next ones: the ingest's events are written this way
    while the batch is checked, and the server's work is no longer a wait at the end of it.
    Nothing else may use the session's connection inside the block (no query, no flush).
    Elsewhere the rows are kept and inserted when the block ends without an error."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        kept: list[dict[str, Any]] = []
        yield kept.append
        insert_rows(session, table, kept)
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    with ExitStack() as stack:
        yield _CopyRows(table, raw, stack).write


class _CopyRows:
    """One table's COPY FROM STDIN, opened when the first row (which names the columns) comes."""

    get: Callable[[dict[str, Any]], Any]  # the row's values in column order (set by _open)
    convert: list[tuple[int, Convert]]
    single: bool

    def __init__(self, table: Table, raw: Any, stack: ExitStack) -> None:
        self.table, self.raw, self.stack = table, raw, stack
        self.copy: Any = None

    def _open(self, names: list[str]) -> None:
        _check_names(self.table, names)
        plan = _plan(self.table, names, "postgresql")
        self.convert = [(i, f) for i, f in enumerate(plan) if f is not None]
        self.get, self.single = itemgetter(*names), len(names) == 1
        cur = self.stack.enter_context(self.raw.cursor())
        sql = f"COPY {self.table.name} ({', '.join(names)}) FROM STDIN"  # noqa: S608
        self.copy = self.stack.enter_context(cur.copy(sql))

    def write(self, row: dict[str, Any]) -> None:
        if self.copy is None:
            self._open(list(row))
        values = [self.get(row)] if self.single else list(self.get(row))
        for i, f in self.convert:
            values[i] = f(values[i])
        self.copy.write_row(values)
