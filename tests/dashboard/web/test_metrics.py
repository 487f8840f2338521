"""The dashboard's Prometheus metrics at GET /api/v1/metrics: behind the API's authentication
(a read-scoped token, any role), and filled by the real runtime (ingest through Mosquitto, the
broker link process): door decisions by result, ingest counts, per-node acks and lag, backups,
policy; no person, name or card in them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from backup.events import BackupSnapshot
from controller.mqtt import MqttSettings
from dashboard.app import create_app
from dashboard.auth.service import AuthService
from dashboard.db import make_engine, make_sessionmaker
from dashboard.metrics import DashboardCollector, dashboard_registry, for_runtime, render
from dashboard.models.auth import User
from dashboard.models.people import Card, Person
from dashboard.runtime import build_runtime
from dashboard.settings import DashboardSettings
from tests.dashboard.conftest import SITE, FakeNode
from tests.dashboard.ingest.test_consumer import NodeSide
from tests.dashboard.web.conftest import LiveDashboard, WebApp, add_user, make_db, serve_app
from tests.support.mosquitto import Broker

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_need_a_read_token_or_a_session(webapp: WebApp) -> None:
    anonymous = webapp.client().get("/api/v1/metrics")
    assert anonymous.status_code == 401
    for role in ("auditor", "backup_operator", "security_admin", "admin"):
        token = webapp.token(role, {"read"})
        got = webapp.client().get("/api/v1/metrics",
                                  headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 200, role
        assert got.headers["content-type"].startswith("text/plain; version=")
        assert parse(got.text)[("secroom_dashboard_database_up", ())] == 1
    write_only = webapp.token("admin", {"write"})
    refused = webapp.client().get("/api/v1/metrics",
                                  headers={"Authorization": f"Bearer {write_only}"})
    assert refused.status_code == 403
    browser, _ = webapp.as_role("auditor")  # a logged-in session may look too
    assert browser.get("/api/v1/metrics").status_code == 200


def test_an_unreachable_database_shows_as_down_not_as_an_error(tmp_path: Path) -> None:
    missing = make_sessionmaker(make_engine(f"sqlite:///{tmp_path}/no/such/dir/db.sqlite3"))
    samples = parse(render(dashboard_registry(DashboardCollector(missing, site="lab")))
                    .decode())
    assert samples[("secroom_dashboard_database_up", ())] == 0


@pytest.fixture
def live(tmp_path: Path, broker: Broker) -> Iterator[LiveDashboard]:
    """The dashboard with its runtime (ingest through the broker), for the FakeNode's site."""
    settings = DashboardSettings(data_dir=tmp_path / "live", site=SITE,
                                 mqtt=MqttSettings(port=broker.port))
    make_db(settings)
    runtime = build_runtime(settings)
    app = create_app(settings, sessionmaker=runtime.sessionmaker, bus=runtime.bus)
    app.state.metrics = for_runtime(runtime)  # as `secroom dashboard run` does
    runtime.start()
    try:
        link = next(p for p in runtime.parts if type(p).__name__ == "LinkProcess")
        assert link.wait_subscribed(30), "events sent before the ingest subscribes are lost"
        with serve_app(app) as base_url:
            yield LiveDashboard(base_url, "", "", runtime.sessionmaker, settings, app,
                                runtime.bus, runtime)
    finally:
        runtime.stop()


def _token(live: LiveDashboard) -> str:
    add_user(live.sessionmaker, live.settings, "prometheus", "auditor")
    with live.sessionmaker.begin() as db:
        uid = db.scalar(select(User.id).where(User.username == "prometheus"))
        assert uid is not None
        _, secret = AuthService(live.settings, live.sessionmaker).create_token(
            db, user_id=uid, name="scrape", scopes={"read"}, now=datetime.now(UTC))
    return secret


def test_the_running_dashboard_exports_ingest_doors_nodes_and_backups(
        live: LiveDashboard, broker: Broker) -> None:
    node = FakeNode("gw1")
    with live.sessionmaker() as db:
        node.enrol(db)
        db.add(Person(id="p-tanaka", name="田中 花子", active=True, created_at=datetime.now(UTC),
                      cards=[Card(uid="04A1B2C3D4E5F6", enrolled_at=datetime.now(UTC),
                                  enrolled_by="admin")]))
        db.commit()
    side = NodeSide(broker, node)
    now = datetime.now(UTC).replace(microsecond=0)
    snapshot = BackupSnapshot(
        snapshot_id="s1", started="2026-11-20T17:00:00Z", duration_s=42.5, files=10, dirs=2,
        symlinks=0, files_new=10, files_changed=0, files_unchanged=0, files_removed=0,
        bytes_total=100, bytes_read=100, bytes_new=100, bytes_stored=80, repo_bytes=80,
        skipped=0)
    events = [node.event(ts=now - timedelta(seconds=60)),
              node.access("p-tanaka", ts=now - timedelta(seconds=50)),
              node.access("", granted=False, reason="unknown_card",
                          ts=now - timedelta(seconds=40)),
              node.access("p-tanaka", "out", ts=now - timedelta(seconds=30)),
              node.event("backup.snapshot", snapshot, ts=now - timedelta(seconds=20))]
    side.send(*events)
    side.state(health={"numbers_removed": 2, "mqtt": {"oversized": 1}},
               receipts={"acks_refused": 3, "resends_refused": 0})
    assert side.ack_reaching(len(events)) == len(events)
    token = _token(live)
    text = httpx.get(f"{live.base_url}/api/v1/metrics", timeout=10,
                     headers={"Authorization": f"Bearer {token}"}).text
    m = parse(text)
    d1 = ("door", "d1")
    assert m[("secroom_door_decisions_total", (d1, ("reason", "none"),
                                               ("result", "granted")))] == 2
    assert m[("secroom_door_decisions_total", (d1, ("reason", "unknown_card"),
                                               ("result", "denied")))] == 1
    assert m[("secroom_ingest_events_stored_total", ())] == len(events)
    assert m[("secroom_ingest_rejected_total", (("reason", "bad_signature"),))] == 0
    gw = (("node", "gw1"),)
    assert m[("secroom_node_events_stored_total", gw)] == len(events)
    assert m[("secroom_node_acked_seq", gw)] == len(events)
    assert m[("secroom_node_gap_open", gw)] == 0
    assert 20 <= m[("secroom_node_ingest_lag_seconds", gw)] < 600
    assert m[("secroom_node_numbers_removed_total", gw)] == 2
    assert m[("secroom_node_receipts_refused_total", (("node", "gw1"),
                                                      ("receipt", "ack")))] == 3
    assert m[("secroom_node_oversized_messages_total", gw)] == 1
    assert m[("secroom_mqtt_connected", ())] == 1
    assert m[("secroom_backup_last_success_timestamp_seconds", ())] == \
        (now - timedelta(seconds=20)).timestamp()
    assert m[("secroom_backup_last_duration_seconds", ())] == 42.5
    assert m[("secroom_dashboard_database_up", ())] == 1
    for personal in ("p-tanaka", "田中", "04A1B2C3D4E5F6", "01020304"):
        assert personal not in text
