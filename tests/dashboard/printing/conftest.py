"""Fixtures for the printing and backups pages: the web helper's app (over the core's ``sm``:
SQLite, and PostgreSQL when SECROOM_TEST_PG_URL is set) with these routers and their role rows,
and a node whose signed events go through the real ingest core."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from controller.envelope import Event
from dashboard.auth import roles
from dashboard.backups import web as backups_web
from dashboard.ingest.core import IngestCore
from dashboard.printing import web as printing_web
from tests.dashboard.conftest import SITE, FakeNode, msg
from tests.dashboard.web.conftest import WebApp, webapp_db  # noqa: F401 - fixture

ROLE_ROWS = {**printing_web.ROLE_ROWS, **backups_web.ROLE_ROWS}


@pytest.fixture
def pages(webapp_db: WebApp, monkeypatch: pytest.MonkeyPatch) -> WebApp:  # noqa: F811
    """The app with the printing and backups routers, as the lead wires them (flat routes in
    ``dashboard.web.routers()``) and their rows in the role matrix."""
    for name, allowed in ROLE_ROWS.items():
        monkeypatch.setitem(roles.ROLE_MATRIX, name, allowed)
    have = {getattr(r, "name", None) for r in webapp_db.app.router.routes}
    for router in (printing_web.router, backups_web.router):
        webapp_db.app.router.routes.extend(r for r in router.routes if r.name not in have)
    return webapp_db


@dataclass
class Feed:
    """Signs events as a node and stores them through the ingest core, one batch per call."""

    sm: sessionmaker[Session]
    node: FakeNode
    core: IngestCore

    def event(self, kind: str, data: BaseModel | dict[str, Any], ts: datetime) -> Event:
        payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        return self.node.event(kind, payload, ts=ts)

    def store(self, events: Iterable[Event], now: datetime) -> None:
        items = [msg(e) for e in events]
        with self.sm.begin() as session:
            result = self.core.process(session, items, now)
        assert result.stored == len(items), result.counts


def make_feed(sm: sessionmaker[Session], name: str) -> Feed:
    node = FakeNode(name)
    with sm() as session:
        node.enrol(session)
    return Feed(sm, node, IngestCore(site=SITE))


@pytest.fixture
def feed(sm: sessionmaker[Session]) -> Feed:
    return make_feed(sm, "gw1")
