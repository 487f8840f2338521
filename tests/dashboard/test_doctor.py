"""`secroom doctor --config dashboard.toml` (the dashboard's checks, reached through the CLI's
entry point): database reachable and migrated to head, policy key owner-only, the broker with
TLS and the dashboard's credentials; each fault named with its fix, exit 1 until fixed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.keys import generate
from tests.controller.test_doctor import line, run_doctor
from tests.support import free_port
from tests.support.secure_broker import SecureBroker

ROOT = Path(__file__).resolve().parents[2]





@pytest.mark.integration
def test_dashboard_installation_from_broken_to_passing(tmp_path: Path) -> None:
    broker = SecureBroker({"dashboard": "dash-password", "gw1": "gw1-password"})
    broker.start()
    try:
        data = tmp_path / "dash"
        data.mkdir(mode=0o700)
        password = tmp_path / "dashboard.pw"
        password.write_text("dash-password\n")
        password.chmod(0o600)
        config = tmp_path / "dashboard.toml"
        config.write_text(
            f'[dashboard]\ndata_dir = "{data}"\nsite = "tokyo-hq"\n'
            f'[dashboard.mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
            f'username = "dashboard"\npassword_file = "{password}"\n'
            f'[dashboard.mqtt.tls]\nca_file = "{broker.ca.ca_file}"\n')
        code, lines = run_doctor(config)
        assert code == 1
        assert f"secroom db upgrade --config {config}" in line(lines, "fail", "database file")
        assert "missing" in line(lines, "fail", "policy key")

        subprocess.run([sys.executable, "-m", "controller.cli", "db", "upgrade", "--config",
                        str(config)], check=True, timeout=120, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        generate(data / "policy.key")
        (data / "policy.key").chmod(0o640)
        code, lines = run_doctor(config)
        assert code == 1
        assert "migrated to the newest revision" in line(lines, "ok", "database sqlite:")
        assert f"chmod 600 {data / 'policy.key'}" in line(lines, "fail", "policy key")

        (data / "policy.key").chmod(0o600)
        code, lines = run_doctor(config)
        assert code == 0, "\n".join(lines)
        assert "accepted as dashboard" in line(lines, "ok", "login")
        line(lines, "ok", "TLS")
        assert "checks passed" in lines[-1]
    finally:
        broker.stop()


def test_an_unreachable_database_is_named(tmp_path: Path) -> None:
    config = tmp_path / "dashboard.toml"
    url = f"postgresql+psycopg://secroom@127.0.0.1:{free_port()}/secroom"  # nothing listens
    config.write_text(f'[dashboard]\ndata_dir = "{tmp_path}"\ndatabase_url = "{url}"\n')
    code, lines = run_doctor(config)
    assert code == 1
    assert "start PostgreSQL" in line(lines, "fail", "database postgresql+psycopg://")


def test_an_invalid_config_fails_with_the_reason(tmp_path: Path) -> None:
    config = tmp_path / "dashboard.toml"
    config.write_text('[dashboard]\nsite = "tokyo-hq"\ncolour = "blue"\n')
    code, lines = run_doctor(config)
    assert code == 1
    assert "colour" in line(lines, "fail", "config")
