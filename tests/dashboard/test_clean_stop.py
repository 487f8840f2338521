"""`secroom dashboard run` stopped by SIGTERM (as systemd stops it) ends its own helper
processes (the ingest's broker link, the signature audit, multiprocessing's resource tracker)
and its runtime before it exits: no process is left for systemd to kill, and the next start
finds no unclean-stop marker. Before, uvicorn re-raised SIGTERM under the default handler
after serving, the process died before the runtime stopped, and the link process and the
resource tracker were left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import free_port
from tests.support.mosquitto import Broker
from tests.support.processes import alive, descendants

pytestmark = pytest.mark.integration


def test_sigterm_stops_every_helper_process_and_the_runtime(tmp_path: Path,
                                                             broker: Broker) -> None:
    data = tmp_path / "dash"
    config = tmp_path / "dashboard.toml"
    config.write_text(f'[dashboard]\ndata_dir = "{data}"\n'
                      f'database_url = "sqlite:///{data}/db.sqlite"\nsite = "s1"\n'
                      f"[dashboard.mqtt]\nport = {broker.port}\n")
    secroom = [sys.executable, "-m", "controller.cli"]
    subprocess.run([*secroom, "db", "upgrade", "--config", str(config)], check=True,
                   timeout=120, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([*secroom, "dashboard", "run", "--config", str(config), "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:  # an external process: polled, nothing to subscribe to
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "it did not start"
            time.sleep(0.1)
        helpers = descendants(proc.pid)
        assert helpers, "the link process runs beside the dashboard"
        assert (data / "dashboard.running").exists()
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    assert not [pid for pid in helpers if alive(pid)]
    assert not (data / "dashboard.running").exists()  # the runtime stopped: a clean stop
