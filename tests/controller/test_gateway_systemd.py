"""`secroom gateway run` as systemd runs it: READY=1 once the node has started, WATCHDOG=1 from
its main loop at half of WatchdogSec, its metrics on the loopback port, and on SIGTERM a clean
stop (STOPPING=1, node.stopped journaled and delivered, offline state retained, exit 0, no
process left behind for systemd to kill)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import httpx
import pytest
import tomli_w
from prometheus_client.parser import text_string_to_metric_families

from controller.journal import verify_journal
from controller.keys import load_private
from controller.mqtt import MqttLink, MqttSettings
from tests.controller.gateway_kit import EventCollector, make_kit
from tests.controller.test_sdnotify import NotifySocket, terminate_like_systemd
from tests.support import free_port
from tests.support.mosquitto import Broker

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _retained_state(port: int, topic: str) -> dict[str, object]:
    got: list[bytes] = []
    done = threading.Event()
    link = MqttLink(MqttSettings(port=port), client_id="state-reader")
    link.subscribe(topic, lambda _t, payload: (got.append(payload), done.set()))
    link.start()
    try:
        assert done.wait(10), "no retained state"
    finally:
        link.stop()
    return dict(json.loads(got[0]))


def test_ready_watchdog_metrics_and_a_clean_stop_on_sigterm(tmp_path: Path,
                                                            broker: Broker) -> None:
    kit = make_kit(tmp_path / "gw", mqtt_port=broker.port, backend="fake")
    metrics_port = free_port()
    data = tomllib.loads(kit.config_path.read_text())
    data["metrics"] = {"listen": f"127.0.0.1:{metrics_port}"}
    kit.config_path.write_text(tomli_w.dumps(data))
    collector = EventCollector(broker.port).start()
    notify = NotifySocket()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": notify.address,
           "WATCHDOG_USEC": "200000"}  # WatchdogSec=0.2 s: a ping every 0.1 s
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "gateway", "run", "--config",
         str(kit.config_path)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    try:
        ready = notify.receive(timeout=60)
        assert ready.startswith("READY=1\n") and "STATUS=gateway gw1 running" in ready
        # READY came after the start: node.started is journaled (it reaches the broker)
        collector.wait_for(lambda e: e.node == "gw1" and e.kind == "node.started", timeout=30)
        assert [notify.receive(timeout=5) for _ in range(3)] == ["WATCHDOG=1"] * 3

        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        samples = {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples["secroom_node_info"].labels == {"node": "gw1", "site": "hq"}
        assert samples["secroom_journal_events_total"].value >= 1  # node.started at least
        assert samples["secroom_mqtt_connected"].value == 1
        assert samples["secroom_policy_applied_version"].value == 1  # the kit's signed file
        assert "process_resident_memory_bytes" in samples

        terminate_like_systemd(proc, notify)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        notify.close()
    report = verify_journal(kit.config.journal_path, load_private(kit.config.key_file)
                            .public_key())
    assert report.ok
    stopped = collector.wait_for(lambda e: e.node == "gw1" and e.kind == "node.stopped",
                                 timeout=30)
    assert stopped.seq == report.last, "node.stopped is the last event, and it was delivered"
    collector.stop()
    assert _retained_state(broker.port, "secroom/v1/hq/gw1/state") == {"state": "offline"}
    with pytest.raises(httpx.HTTPError):  # the metrics server stopped with the node
        httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2)
