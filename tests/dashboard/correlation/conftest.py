"""A database per backend holding the generated month (built once per module)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

import dashboard.models  # noqa: F401 - every table on Base.metadata
import dashboard.models.correlation  # noqa: F401
import dashboard.models.numlog  # noqa: F401
from dashboard.correlation.engine import Correlator
from dashboard.db import Base, make_engine, make_sessionmaker
from tests.dashboard.correlation import world as W

PG_URL = os.environ.get("SECROOM_TEST_PG_URL", "")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


def pg_schema_engine() -> tuple[Engine, str]:
    if not PG_URL:
        from tests.support import unavailable

        unavailable("SECROOM_TEST_PG_URL is not set (PostgreSQL tests need it)")
    schema = f"corr_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in PG_URL else "?"
    return make_engine(f"{PG_URL}{sep}options=-csearch_path%3D{schema}"), schema


def drop_pg_schema(schema: str) -> None:
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def fresh_engine(kind: str, tmp: Path) -> tuple[Engine, str | None]:
    if kind == "sqlite":
        eng = make_engine(f"sqlite:///{tmp / 'dash.sqlite3'}")
        Base.metadata.create_all(eng)
        return eng, None
    eng, schema = pg_schema_engine()
    Base.metadata.create_all(eng)
    return eng, schema


@pytest.fixture
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """An empty database (SQLite; PostgreSQL when parametrised with ``backend``)."""
    kind = getattr(request, "param", "sqlite")
    eng, schema = fresh_engine(kind, tmp_path)
    try:
        yield make_sessionmaker(eng)
    finally:
        eng.dispose()
        if schema:
            drop_pg_schema(schema)


@dataclass
class Month:
    sm: sessionmaker[Session]
    world: W.World
    correlator: Correlator
    backend: str


@pytest.fixture(scope="module", params=BACKENDS)
def month(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Month]:
    eng, schema = fresh_engine(request.param, tmp_path_factory.mktemp("month"))
    sm = make_sessionmaker(eng)
    w = W.build()
    try:
        with sm() as s:
            c = W.load(s, w)
        yield Month(sm, w, c, request.param)
    finally:
        eng.dispose()
        if schema:
            drop_pg_schema(schema)
