"""The example alert rules in hardware/prometheus/: valid for promtool (and its unit tests of
when each alert fires pass), well-formed, and every metric they use is one the code exports
(names taken from a real scrape of a node runtime and of the dashboard's collector)."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import yaml
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from backup.events import BackupFailed, BackupSnapshot
from controller.envelope import canonical_json, format_ts, topic_for
from controller.keys import generate
from controller.metrics import NodeCollector, node_registry
from controller.mqtt import MqttLink, MqttSettings
from controller.runtime import NodeRuntime, RuntimeSettings
from dashboard.bus import Bus
from dashboard.ingest.consumer import IngestConsumer
from dashboard.ingest.core import IngestCore
from dashboard.metrics import DashboardCollector, DoorDecisions, dashboard_registry
from dashboard.models.people import SiteSettings
from dashboard.models.policy import PolicyVersion
from tests.controller.gateway_kit import make_policy
from tests.dashboard.conftest import SITE, T0, FakeNode, msg
from tests.support import free_port, require_binary

RULES_DIR = Path(__file__).resolve().parents[2] / "hardware" / "prometheus"
RULES = RULES_DIR / "secroom-rules.yml"
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself


def _names(text: bytes) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text.decode()) for s in f.samples}


def node_exports(tmp_path: Path) -> set[str]:
    generate(tmp_path / "node.key")
    runtime = NodeRuntime(RuntimeSettings(
        node="gw1", site="hq", journal=tmp_path / "journal.sqlite",
        key_file=tmp_path / "node.key", mqtt=MqttSettings(port=free_port())))  # no broker
    runtime.start()
    try:
        door = SimpleNamespace(state="locked", in_lockdown=False, contact_open=False)
        gateway = SimpleNamespace(counters={}, decisions={("d1", "granted", "none"): 1},
                                  readers_connected={"r1": True}, doors={"d1": door})
        policy = make_policy()
        registry = node_registry(NodeCollector(runtime, clock_state=lambda: "synced",
                                               policy=lambda: policy, gateway=gateway))
        return _names(generate_latest(registry))
    finally:
        runtime.stop()


def dashboard_exports(sm: sessionmaker[Session]) -> set[str]:
    node = FakeNode()
    with sm.begin() as db:
        node.enrol(db)
    snap = BackupSnapshot(
        snapshot_id="s1", started="2026-11-20T17:00:00Z", duration_s=1.0, files=1, dirs=1,
        symlinks=0, files_new=1, files_changed=0, files_unchanged=0, files_removed=0,
        bytes_total=1, bytes_read=1, bytes_new=1, bytes_stored=1, repo_bytes=1, skipped=0)
    failed = BackupFailed(stage="run", error="disk_full", message="no space left",
                          exit_code=6, duration_s=1.0)
    state = (topic_for(SITE, node.name, "state"), canonical_json({
        "state": "online", "ts": format_ts(T0), "health": {"numbers_removed": 0},
        "receipts": {"acks_refused": 0, "resends_refused": 0}}))
    with sm.begin() as db:
        IngestCore(site=SITE).process(db, [msg(node.event()), msg(node.applied(3)),
                                           msg(node.event("backup.snapshot", snap)),
                                           msg(node.event("backup.failed", failed)),
                                           state],
                                      T0 + timedelta(minutes=1))
        db.add(PolicyVersion(version=3, site=SITE, issued_at=T0, sha256="0" * 64, blob=b"x"))
        db.add(SiteSettings(site=SITE))
    link = MqttLink(MqttSettings(port=free_port()), client_id="unused")
    consumer = IngestConsumer(sm, link, site=SITE, bus=Bus(), audit_processes=0)
    collector = DashboardCollector(sm, site=SITE, consumer=consumer, link=link,
                                   decisions=DoorDecisions(None),
                                   clock=lambda: datetime.now(UTC))
    return _names(generate_latest(dashboard_registry(collector)))


def test_every_metric_in_the_rules_is_exported(tmp_path: Path, sm: sessionmaker[Session]
                                                ) -> None:
    exported = node_exports(tmp_path) | dashboard_exports(sm)
    assert "secroom_backup_last_failure_timestamp_seconds" in exported  # the setup is complete
    rules = yaml.safe_load(RULES.read_text())
    used: set[str] = set()
    for group in rules["groups"]:
        assert group["name"].startswith("secroom-")
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["alert"].startswith("Secroom")
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            used |= set(re.findall(r"\bsecroom_\w+|\bup\b", rule["expr"]))
    assert used, "the expressions name metrics"
    missing = sorted(used - exported - PROMETHEUS_OWN)
    assert not missing, f"rules use metrics nobody exports: {missing}"


def test_promtool_accepts_the_rules_their_unit_tests_and_the_scrape_config() -> None:
    promtool = require_binary("promtool")  # Debian package prometheus
    for args in (["check", "rules", str(RULES)],
                 ["test", "rules", str(RULES_DIR / "secroom-rules.test.yml")],
                 ["check", "config", "--syntax-only", str(RULES_DIR / "prometheus.example.yml")]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120,
                              check=False, cwd=RULES_DIR)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout + done.stderr

