"""`secroom usb agent` as systemd runs it (on a simulated USB host, through the real command as
the soak does): READY=1 from its loop, WATCHDOG=1 while the loop turns, and on SIGTERM
STOPPING=1, node.stopped journaled, exit 0 and no process left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from controller.journal import verify_journal
from controller.keys import generate
from tests.controller.gateway_kit import EventCollector
from tests.controller.test_sdnotify import NotifySocket, terminate_like_systemd
from tests.support.mosquitto import Broker

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_usb_agent_notifies_from_its_loop_and_stops_cleanly(tmp_path: Path,
                                                            broker: Broker) -> None:
    node = tmp_path / "pc-01"
    node.mkdir()
    key = generate(node / "node.key")
    generate(node / "dashboard.key")  # a policy signer nobody uses here: trust needs a key
    config = node / "usb-agent.toml"
    config.write_text(tomli_w.dumps({
        "node": {"name": "pc-01", "site": "hq", "data_dir": str(node), "clock": "synced"},
        "mqtt": {"port": broker.port, "backoff_min_s": 0.05, "backoff_max_s": 0.5},
        "policy": {"trusted_keys": ["dashboard.key.pub"]},
        "usb": {"host": "pc-01"},
    }))
    (tmp_path / "host").mkdir()
    collector = EventCollector(broker.port).start()
    notify = NotifySocket()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": notify.address,
           "WATCHDOG_USEC": "1000000"}  # the agent's loop turns every 0.2 s here
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/soak/usb_proc.py"), "--config", str(config),
         "--host-dir", str(tmp_path / "host")],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        ready = notify.receive(timeout=60)
        assert ready == "READY=1\nSTATUS=USB agent pc-01 running"
        collector.wait_for(lambda e: e.node == "pc-01" and e.kind == "node.started", timeout=30)
        assert [notify.receive(timeout=5) for _ in range(2)] == ["WATCHDOG=1"] * 2
        terminate_like_systemd(proc, notify)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        notify.close()
    report = verify_journal(node / "journal.sqlite", key.public_key())
    assert report.ok
    stopped = collector.wait_for(lambda e: e.node == "pc-01" and e.kind == "node.stopped",
                                 timeout=30)
    assert stopped.seq == report.last
    collector.stop()
