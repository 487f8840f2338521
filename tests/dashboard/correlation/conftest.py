"""A database per backend holding the generated month (built once per module)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import dashboard.models  # noqa: F401 - every table on Base.metadata
import dashboard.models.correlation  # noqa: F401
import dashboard.models.numlog  # noqa: F401
from dashboard.correlation.engine import Correlator
from dashboard.db import Base, make_engine, make_sessionmaker
from tests.dashboard.correlation import world as W
from tests.support.postgres import create_schema, drop_schema, schema_url

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


def fresh_engine(
    kind: str, tmp: Path, request: pytest.FixtureRequest
) -> tuple[Engine, Callable[[], None]]:
    """A database with every table (SQLite file, or a new schema on the session's PostgreSQL)
    and what disposes of it."""
    if kind == "sqlite":
        eng = make_engine(f"sqlite:///{tmp / 'dash.sqlite3'}")
        Base.metadata.create_all(eng)
        return eng, eng.dispose
    url = request.getfixturevalue("pg_url")
    schema = create_schema(url, "corr")
    eng = make_engine(schema_url(url, schema))
    Base.metadata.create_all(eng)

    def dispose() -> None:
        eng.dispose()
        drop_schema(url, schema)

    return eng, dispose


@pytest.fixture
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """An empty database (SQLite; PostgreSQL when parametrised with ``backend``)."""
    kind = getattr(request, "param", "sqlite")
    eng, dispose = fresh_engine(kind, tmp_path, request)
    try:
        yield make_sessionmaker(eng)
    finally:
        dispose()


@dataclass
class Month:
    sm: sessionmaker[Session]
    world: W.World
    correlator: Correlator
    backend: str


@pytest.fixture(scope="module", params=BACKENDS)
def month(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Month]:
    eng, dispose = fresh_engine(request.param, tmp_path_factory.mktemp("month"), request)
    sm = make_sessionmaker(eng)
    w = W.build()
    try:
        with sm() as s:
            c = W.load(s, w)
        yield Month(sm, w, c, request.param)
    finally:
        dispose()
