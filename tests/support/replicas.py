"""N dashboard replica processes (``secroom dashboard run``) on one PostgreSQL schema and one
broker, as the central side of issue 24 runs them: each with its own data folder and HTTP
port, all sharing the database, the policy key and the session secret. A replica can be killed
(SIGKILL, with its helper processes) and started again. The broker is any object with
``host`` and ``port`` (a central broker fed by bridged site brokers will do as well).

    with ReplicaSet(tmp_path / "central", pg_url, broker) as rs:
        rs.start("r1"); rs.start("r2")
        rs.kill("r1")
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from controller import keys
from controller.mqtt import MqttSettings
from tests.support import free_port
from tests.support.postgres import create_schema, drop_schema, schema_url
from tests.support.processes import alive, descendants

ROOT = Path(__file__).resolve().parents[2]
SITE = "site1"


class ReplicaSet:
    def __init__(self, root: Path, pg_url: str, broker: Any, *, site: str = SITE,
                 sites: list[str] | None = None, mqtt: MqttSettings | None = None,
                 lease_s: float = 4.0, renew_s: float = 1.0) -> None:
        """``sites``: a central dashboard's other sites; ``mqtt``: the broker link's settings
        (a central broker's TLS and the dashboard's certificate), else plain ``broker``."""
        self.root = root
        self.pg_url = pg_url
        self.broker = broker
        self.site = site
        self.sites = list(sites or [])
        self.mqtt = mqtt or MqttSettings(host=broker.host, port=broker.port)
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.schema = ""
        self.database_url = ""
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.helpers: dict[str, set[int]] = {}
        self.policy_key = root / "policy.key"
        self.policy_pub = root / "policy.key.pub"
        self.session_secret = root / "session.secret"

    # -- set-up ------------------------------------------------------------------------------

    def __enter__(self) -> ReplicaSet:
        self.root.mkdir(parents=True, exist_ok=True)
        self.schema = create_schema(self.pg_url, "replicas")
        self.database_url = schema_url(self.pg_url, self.schema)
        keys.generate(self.policy_key)
        self.session_secret.write_text(secrets.token_hex(32) + "\n")
        os.chmod(self.session_secret, 0o600)
        out = subprocess.run(self._cli("db", "upgrade", "--config", str(self.config("r0"))),
                             capture_output=True, timeout=300, cwd=self.root)
        if out.returncode != 0:
            raise RuntimeError(f"db upgrade failed: {out.stderr.decode()[-2000:]}")
        return self

    def __exit__(self, *exc: object) -> None:
        for name in list(self.procs):
            self.stop(name)
        drop_schema(self.pg_url, self.schema)

    @staticmethod
    def _cli(*args: str) -> list[str]:
        return [sys.executable, "-m", "controller.cli", *args]

    def config(self, name: str) -> Path:
        data = self.root / name
        data.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{name}.toml"
        path.write_text(
            "[dashboard]\n"
            f'data_dir = "{data}"\n'
            f'database_url = "{self.database_url}"\n'
            f'site = "{self.site}"\n'
            f"sites = {json.dumps(self.sites)}\n"
            f'policy_key_file = "{self.policy_key}"\n'
            f'session_secret_file = "{self.session_secret}"\n'
            "gap_timeout_s = 30\n"
            + mqtt_toml(self.mqtt) +
            "[dashboard.replica]\n"
            f'name = "{name}"\nlease_s = {self.lease_s}\nrenew_s = {self.renew_s}\n',
            encoding="utf-8")
        return path

    # -- processes ---------------------------------------------------------------------------

    def start(self, name: str, timeout: float = 90.0) -> None:
        port = free_port()
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            self._cli("dashboard", "run", "--config", str(self.config(name)), "--port",
                      str(port)), stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        log.close()
        self.procs[name], self.ports[name] = proc, port
        deadline = time.monotonic() + timeout
        while True:  # an external process: polled, nothing to subscribe to
            try:
                if httpx.get(self.url(name, "/health"), timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"replica {name} did not start:\n{self.log_tail(name)}")
            time.sleep(0.1)
        self.helpers[name] = descendants(proc.pid)

    def url(self, name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def kill(self, name: str) -> None:
        """SIGKILL the replica and every helper process it started (as a crash of the box or
        the OOM killer's kill of the service's cgroup would)."""
        proc = self.procs.pop(name)
        helpers = descendants(proc.pid) | self.helpers.pop(name, set())
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        for pid in helpers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        helpers = descendants(proc.pid) | self.helpers.pop(name, set())
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for pid in helpers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def mqtt_toml(m: MqttSettings) -> str:
    """``[dashboard.mqtt]`` (and its ``tls``) for these settings."""
    out = ("[dashboard.mqtt]\n"
           f'host = "{m.host}"\nport = {m.port}\nkeepalive_s = {m.keepalive_s}\n'
           f"backoff_min_s = {m.backoff_min_s}\nbackoff_max_s = {m.backoff_max_s}\n")
    if m.tls is not None:
        out += "[dashboard.mqtt.tls]\n" + "".join(
            f'{k} = "{v}"\n' for k, v in (("ca_file", m.tls.ca_file),
                                            ("cert_file", m.tls.cert_file),
                                            ("key_file", m.tls.key_file)) if v is not None)
    return out


def post_login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """The log-in form with its CSRF token, as a browser fills it in; the response."""
    import re

    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "no CSRF token on the log-in page"
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token.group(1), "next": "/nodes"},
                       follow_redirects=False)


def login(client: httpx.Client, username: str, password: str) -> None:
    r = post_login(client, username, password)
    assert r.status_code == 303, r.text[-500:]
