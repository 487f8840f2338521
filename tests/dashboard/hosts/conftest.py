"""Fixtures for the host pages and queries: the web app over the core's ``sm`` and a host
agent node whose signed events go through the real ingest core."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.dashboard.printing.conftest import Feed, make_feed
from tests.dashboard.web.conftest import WebApp, webapp_db  # noqa: F401 - fixture


@pytest.fixture
def pages(webapp_db: WebApp) -> WebApp:  # noqa: F811
    return webapp_db


@pytest.fixture
def pc(sm: sessionmaker[Session]) -> Feed:
    return make_feed(sm, "pc-01")
