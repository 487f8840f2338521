"""Database engine and session factory. SQLite is the embedded default; PostgreSQL scales out."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, sessionmaker

from controller.files import create_private


class _NoRowLog(logging.Filter):
    """SQLAlchemy logs every fetched row at DEBUG: password hashes and token digests with them.
    Statements stay; their parameters are hidden by ``hide_parameters`` below."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Row %r"


logging.getLogger("sqlalchemy.engine.Engine").addFilter(_NoRowLog())


class Base(DeclarativeBase):
    """Declarative base shared by every dashboard model."""


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            create_private(Path(database))  # 0600, and so are its -wal and -shm files
        engine = create_engine(url, connect_args={"check_same_thread": False},
                               hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            # checkpoint in the writer's commit only past 8,000 pages (32 MiB of WAL) rather
            # than 1,000: index pages rewritten by many batches reach the database file once,
            # not eight times (ingest on SQLite: +6 to +29 % events/s in four paired bench runs).
            # The dashboard checkpoints long before that beside the writer (WalCheckpointer);
            # this is the fallback. The WAL file is truncated back to 64 MiB after a checkpoint.
            cur.execute("PRAGMA wal_autocheckpoint=8000")
            cur.execute("PRAGMA journal_size_limit=67108864")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                         hide_parameters=True)


def make_sessionmaker(engine: Engine) -> sessionmaker:  # type: ignore[type-arg]
    return sessionmaker(engine, expire_on_commit=False)


class WalCheckpointer:
    """Copies an SQLite database's write-ahead log into the database file every ``interval_s``
    from a thread of its own (PASSIVE: it neither waits for nor blocks the writer and readers).

    SQLite otherwise does this inside the commit that crosses ``wal_autocheckpoint``, so the
    ingest worker stood still while the pages were written and synced; the driver lets go of
    the GIL while SQLite works, so here the copy runs on another core beside ingest (+4 and
    +14 % events/s in two paired bench runs). Does nothing for other databases.
    """

    def __init__(self, engine: Engine, interval_s: float = 0.5) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.checkpoints = 0
        self.errors = 0

    def checkpoint(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except SQLAlchemyError:  # busy or unavailable: the next round, or the fallback, does it
            self.errors += 1
        else:
            self.checkpoints += 1

    def run(self, stop: threading.Event) -> None:
        """The loop, until ``stop`` is set (a ``LoopPart`` of the dashboard runtime)."""
        if self.engine.dialect.name != "sqlite":
            return
        while not stop.wait(self.interval_s):
            self.checkpoint()
