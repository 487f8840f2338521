"""Fixtures for the printing and backups pages: the web helper's app (over the core's ``sm``:
SQLite and PostgreSQL) with these routers and their role rows,
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
from dashboard.ingest.core import IngestCore
from tests.dashboard.conftest import SITE, FakeNode, msg
from tests.dashboard.web.conftest import WebApp, webapp_db  # noqa: F401 - fixture


@pytest.fixture
def pages(webapp_db: WebApp) -> WebApp:  # noqa: F811
    """The app (printing and backups routers are in ``dashboard.app.routers()``)."""
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
