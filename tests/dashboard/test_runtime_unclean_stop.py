"""A dashboard that was killed says so when it comes back (nobody else watches it)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from dashboard.models import Anomaly
from dashboard.runtime import build_runtime
from tests.dashboard.web.conftest import make_db, make_settings


def test_a_killed_dashboard_raises_an_anomaly_when_it_starts_again(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'd.sqlite3'}")
    sm = make_db(settings)
    clean = build_runtime(settings)
    clean.start()
    clean.stop()  # a clean shutdown leaves nothing to report
    killed = build_runtime(settings)
    killed.start()  # ... and is never stopped, as if SIGKILLed
    again = build_runtime(settings)
    again.start()
    try:
        with sm() as db:  # (the backup watch also raises "no backup" in this empty site)
            found = db.scalars(
                select(Anomaly).where(Anomaly.kind == "dashboard_unclean_stop")
            ).all()
        assert [(a.kind, a.severity, a.count) for a in found] == [
            ("dashboard_unclean_stop", "warning", 1)
        ]
        assert found[0].detail["running_since"]
    finally:
        again.stop()
        killed.stop()
