"""`secroom doctor --config gateway.toml` against real parts: Mosquitto with TLS and per-node
users (tests/support/secure_broker.py), pcscd with the vpcd virtual readers, a data folder
with the node's real key, journal and signed policy; then the same with the faults an
installer makes: files readable by others, the wrong CA, a wrong password, a missing reader."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from controller.journal import Journal
from controller.keys import generate
from controller.policy import Policy, sign_policy
from readers.pcscd_host import PcscdHost
from tests.controller.gateway_kit import make_policy
from tests.support.pcscd import start_pcscd
from tests.support.secure_broker import SITE, SecureBroker
from tests.support.tls import make_ca

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "gw1-broker-password"  # noqa: S105 - a test broker's


@dataclass
class Install:
    root: Path
    data: Path
    broker: SecureBroker
    pcscd: PcscdHost
    settings: dict[str, Any]

    def write(self, **changes: Any) -> Path:
        config = self.root / "gateway.toml"
        config.write_text(tomli_w.dumps({**self.settings, **changes}))
        return config

    def doctor(self, config: Path) -> tuple[int, list[str]]:
        return run_doctor(config, self.pcscd.env)


def run_doctor(config: Path, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """`secroom doctor --config` as a process: its exit code and its lines."""
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli", "doctor", "--config", str(config)],
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout.splitlines()


def line(lines: list[str], status: str, what: str) -> str:
    found = [x for x in lines if x.startswith(f"{status:<5} ") and what in x]
    assert found, f"no {status} line about {what!r} in:\n" + "\n".join(lines)
    return found[0]


@pytest.fixture
def install(tmp_path: Path) -> Iterator[Install]:
    broker = SecureBroker({"gw1": PASSWORD, "dashboard": "dashboard-password"})
    broker.start()
    pcscd = start_pcscd(tmp_path)
    root, data = tmp_path / "etc", tmp_path / "var"
    root.mkdir()
    data.mkdir(mode=0o700)
    key = generate(data / "node.key")
    admin = generate(root / "policy.key")
    Journal(data / "journal.sqlite", node="gw1", site=SITE, key=key, boot="b1").close()
    fd = os.open(data / "policy.json", os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(sign_policy(Policy.model_validate(
            {**make_policy().model_dump(), "site": SITE, "issued_at": datetime.now(UTC)}), admin))
    password = root / "mqtt.pw"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    settings = {
        "node": {"name": "gw1", "site": SITE, "data_dir": str(data)},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": "gw1",
                 "password_file": str(password), "tls": {"ca_file": str(broker.ca.ca_file)}},
        "readers": {"backend": "pcsc", "bindings": [
            {"name": "Virtual PCD 00 00", "role": "door_in", "door": "server-room"},
            {"name": "Virtual PCD 00 01", "role": "door_out", "door": "server-room"}]},
        "doors": [{"id": "server-room", "relay_pin": 17}],
        "policy": {"trusted_keys": [str(root / "policy.key.pub")]},
    }
    try:
        yield Install(root, data, broker, pcscd, settings)
    finally:
        pcscd.stop()
        broker.stop()


def test_a_good_installation_passes(install: Install) -> None:
    code, lines = install.doctor(install.write())
    assert code == 0, "\n".join(lines)
    assert not [x for x in lines if x.startswith("fail")]
    line(lines, "ok", "node key")
    line(lines, "ok", "journal")
    assert "2 reader(s)" in line(lines, "ok", "pcscd")
    line(lines, "ok", "reader 'Virtual PCD 00 00'")
    assert "certificate valid for '127.0.0.1'" in line(lines, "ok", "TLS")
    assert "accepted as gw1" in line(lines, "ok", "login")
    assert "version 1" in line(lines, "ok", " policy:")
    assert lines[-1].startswith("all ") and "checks passed" in lines[-1]


def test_files_others_can_read_fail_with_the_chmod_to_run(install: Install) -> None:
    (install.data / "node.key").chmod(0o644)
    (install.data / "journal.sqlite").chmod(0o644)
    install.data.chmod(0o755)
    code, lines = install.doctor(install.write())
    assert code == 1
    key = line(lines, "fail", "node key")
    assert "mode 0644" in key and f"chmod 600 {install.data / 'node.key'}" in key
    assert f"chmod 600 {install.data / 'journal.sqlite'}" in line(lines, "fail", "journal")
    assert "chmod 700" in line(lines, "warn", "data dir")
    assert "failed" in lines[-1]


def test_broker_faults_are_named(install: Install, tmp_path: Path) -> None:
    other_ca = make_ca(tmp_path / "other-ca")
    mqtt = install.settings["mqtt"]
    code, lines = install.doctor(install.write(mqtt={**mqtt, "tls": {"ca_file":
                                                                     str(other_ca.ca_file)}}))
    assert code == 1
    tls = line(lines, "fail", "TLS")
    assert "does not verify" in tls and "CA" in tls
    wrong = install.root / "wrong.pw"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    code, lines = install.doctor(install.write(mqtt={**mqtt, "password_file": str(wrong)}))
    assert code == 1
    assert "refused for gw1" in line(lines, "fail", "login")
    plain = {k: v for k, v in mqtt.items() if k != "tls"}
    code, lines = install.doctor(install.write(mqtt=plain))
    assert code == 1  # the TLS port without TLS: MQTT's CONNECT gets no answer
    assert "not configured" in line(lines, "warn", "TLS")  # on loopback only a warning
    assert "may be a TLS listener" in line(lines, "fail", "login")


def test_a_missing_reader_and_pcscd_are_named(install: Install) -> None:
    readers = {"backend": "pcsc", "bindings": [
        {"name": "ACS ACR1252*", "role": "door_in", "door": "server-room"}]}
    code, lines = install.doctor(install.write(readers=readers))
    assert code == 1
    assert "no such reader" in line(lines, "fail", "reader 'ACS ACR1252*'")
    install.pcscd.stop()
    code, lines = install.doctor(install.write())
    assert code == 1
    assert "pcscd" in line(lines, "fail", "pcscd")


def test_osdp_readers_are_checked_by_key_file_and_port_not_by_pcscd(install: Install) -> None:
    from tests.support.osdp_pd import PtyLine, write_key

    pty = PtyLine()
    try:
        key = os.urandom(16)
        key_file = write_key(install.root / "door-in.key", key)
        osdp_in = {"name": "door-in-osdp", "kind": "osdp", "role": "door_in",
                   "door": "server-room", "port": pty.port, "address": 1,
                   "key_file": str(key_file)}
        readers = {"backend": "pcsc", "bindings": [osdp_in]}
        code, lines = install.doctor(install.write(readers=readers))
        assert "key file ok" in line(lines, "ok", "OSDP reader 'door-in-osdp'")
        assert not [x for x in lines if "pcscd" in x]  # no PC/SC reader: pcscd not asked
        key_file.chmod(0o644)
        missing_port = {**osdp_in, "name": "door-out-osdp", "role": "door_out",
                        "port": str(install.root / "ttyUSB9"),
                        "key_file": str(write_key(install.root / "door-out.key", key))}
        code, lines = install.doctor(install.write(
            readers={"backend": "pcsc", "bindings": [osdp_in, missing_port]}))
        assert code == 1
        assert "chmod 600" in line(lines, "fail", "OSDP reader 'door-in-osdp'")
        assert "not found" in line(lines, "fail", "OSDP reader 'door-out-osdp'")
        assert key.hex() not in "\n".join(lines)
    finally:
        pty.close()
