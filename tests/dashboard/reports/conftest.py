"""The generated month (SQLite and PostgreSQL, as in tests/dashboard/correlation/conftest.py),
with some anomalies acknowledged and resolved, for the report tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.anomalies import acknowledge, resolve
from dashboard.db import make_sessionmaker
from dashboard.models.anomalies import Anomaly
from tests.dashboard.correlation import world as W
from tests.dashboard.correlation.conftest import BACKENDS, Month, db, fresh_engine  # noqa: F401
from tests.dashboard.web.conftest import browser_page, live_dashboard, webapp  # noqa: F401 - reused


@pytest.fixture(scope="module", params=BACKENDS)
def month(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Month]:
    tmp: Path = tmp_path_factory.mktemp("report")
    eng, dispose = fresh_engine(request.param, tmp, request)
    sm = make_sessionmaker(eng)
    w = W.build()
    try:
        with sm() as s:
            c = W.load(s, w)
            later = W.NOW + timedelta(hours=1)
            forced = s.scalars(select(Anomaly).where(Anomaly.kind == "corr.door_forced")).one()
            acknowledge(s, "admin1", forced.id, "警備会社に確認中", now=later)
            _name_the_pcs(s, later)
            gap = s.scalars(select(Anomaly).where(Anomaly.kind == "corr.node_log_gap")).one()
            resolve(s, "admin1", gap.id, "USB エージェント再起動による欠番、再送済み", now=later)
            s.commit()
        m = Month(sm, w, c, request.param)
        m.tmp = tmp  # type: ignore[attr-defined]
        yield m
    finally:
        dispose()


def _name_the_pcs(session: Session, now: datetime) -> None:
    """Give every room PC of the month a display name, as an admin would (names, not ids)."""
    from dashboard.models.events import StoredEvent
    from dashboard.names import set_name

    hosts = {e.data.get("host") for e in session.scalars(
        select(StoredEvent).where(StoredEvent.kind.like("host.%")))}
    for i, host in enumerate(sorted(h for h in hosts if isinstance(h, str))):
        set_name(session, "admin1", "host", host, f"事務室パソコン{i + 1}", now)
