"""Fixtures for the dashboard core: a fresh database on SQLite and on PostgreSQL (the session's
``pg_url``: SECROOM_TEST_PG_URL or a private cluster), simulated nodes that sign real events,
and an ingest core.

The web helper's tests (tests/dashboard/web/) may import ``FakeNode`` and these fixtures.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

import dashboard.models  # noqa: F401 - registers every table on Base.metadata
from controller.envelope import GENESIS, Event, seal
from controller.events import NODE_ROLES, PolicyApplied
from controller.keys import public_b64
from dashboard.db import Base, make_engine, make_sessionmaker
from dashboard.ingest.core import IngestCore
from dashboard.models.nodes import Node
from tests.support.postgres import create_schema, drop_schema, schema_url

SITE = "site1"
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """One private schema on the test PostgreSQL for the whole run, with every table."""
    schema = create_schema(pg_url, "t")
    engine = make_engine(schema_url(pg_url, schema))
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_schema(pg_url, schema)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database with every table and no rows: SQLite file, or the PostgreSQL schema emptied."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'dashboard.sqlite3'}")
        Base.metadata.create_all(eng)
        yield eng
        eng.dispose()
        return
    eng = request.getfixturevalue("pg_engine")
    Base.metadata.create_all(eng)  # tables registered since the schema was made (other models)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with eng.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    yield eng


@pytest.fixture
def sm(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def session(sm: sessionmaker[Session]) -> Iterator[Session]:
    with sm() as s:
        yield s


class FakeNode:
    """A node that signs a real hash chain, like controller.runtime does."""

    def __init__(self, name: str = "gw1", site: str = SITE, key: Ed25519PrivateKey | None = None):
        self.name = name
        self.site = site
        self.key = key or Ed25519PrivateKey.generate()
        self.seq = 0
        self.prev = GENESIS
        self.ts = T0

    @property
    def public(self) -> str:
        return public_b64(self.key.public_key())

    def event(
        self,
        kind: str = "node.started",
        data: dict[str, Any] | BaseModel | None = None,
        ts: datetime | None = None,
        **over: Any,
    ) -> Event:
        """The next event of the chain; ``data`` a dict as it would come off the wire, or the
        kind's model (dumped as the node runtime does)."""
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        self.seq += 1
        self.ts = ts or (self.ts + timedelta(seconds=1))
        ev = seal(
            self.key,
            node=self.name,
            site=self.site,
            seq=self.seq,
            ts=self.ts,
            boot="boot1",
            clock="synced",
            kind=kind,
            data=data if data is not None else self._default_data(kind),
            prev=self.prev,
        )
        self.prev = ev.hash
        return ev

    @staticmethod
    def _default_data(kind: str) -> dict[str, Any]:
        """A payload that fits the kind's model, for kinds whose data the test does not care
        about (node.started is the default kind)."""
        if kind == "node.started":
            return {"boot": "boot1", "resumed_after": 0}
        return {}

    def applied(self, version: int) -> Event:
        """policy.applied of ``version``, as controller.policy_store emits it."""
        return self.event("policy.applied", PolicyApplied(
            version=version, issued_at=T0, key_id="k1", digest="d" * 64, source="mqtt",
            persisted=True))

    def events(self, n: int, kind: str = "node.started") -> list[Event]:
        return [self.event(kind) for _ in range(n)]

    def access(
        self,
        person: str,
        direction: str = "in",
        *,
        door: str = "d1",
        granted: bool = True,
        reason: str | None = None,
        ts: datetime | None = None,
    ) -> Event:
        return self.event(
            "door.access",
            {
                "door": door,
                "reader": f"{door}-{direction}",
                "direction": direction,
                "granted": granted,
                "reason": reason,
                "person_id": person if granted else None,
                "card": "01020304",
            },
            ts=ts,
        )

    def enrol(self, session: Session, *, status: str = "approved",
              roles: Iterable[str] = NODE_ROLES) -> Node:
        """Enrol this node; approved, by default, for every role (tests of other checks than
        the role's send kinds of several roles under one name)."""
        node = Node(
            roles=",".join(sorted(roles)),
            name=self.name,
            site=self.site,
            public_key=self.public,
            key_status=status,
            first_seen_at=T0,
            contiguous_seq=0,
            max_seq=0,
            events_stored=0,
            state="unknown",
            health={},
        )
        session.add(node)
        session.commit()
        return node


def msg(event: Event) -> tuple[str, bytes]:
    return event.topic(), event.to_bytes()


@pytest.fixture
def node() -> FakeNode:
    return FakeNode()


@pytest.fixture
def core() -> IngestCore:
    return IngestCore(site=SITE)
