"""hardware/central/haproxy.cfg in front of two real dashboards on one database: a user logged
in through it keeps being served (the session is in the database, not in a replica) when the
replica that served it stops, and the TLS it terminates is the one the config names."""

from __future__ import annotations

import argparse
import re
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from dashboard.app import create_app
from dashboard.cli import server_config
from dashboard.models.auth import LoginAttempt
from tests.dashboard.web.conftest import (
    PASSWORD,
    ClosedBus,
    add_user,
    make_db,
    make_settings,
)
from tests.support import free_port, port_open, require_binary, stop_process, wait_until
from tests.support.tls import make_ca

KIT = Path(__file__).resolve().parents[2] / "hardware" / "central" / "haproxy.cfg"

pytestmark = pytest.mark.integration


@contextmanager
def _replica(app, settings) -> Iterator[int]:
    """A dashboard served with `secroom dashboard run`'s own uvicorn config, on loopback."""
    import uvicorn

    port = free_port()
    args = argparse.Namespace(host="127.0.0.1", port=port, tls_cert=None, tls_key=None)
    config = server_config(app, settings, args)
    config.log_level, config.timeout_graceful_shutdown = "warning", 1
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 15, "uvicorn to start")
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def _config(tls_pem: Path, port: int, replicas: list[int]) -> str:
    """The shipped sections from ``defaults`` on, with this machine's addresses: the
    frontend on ``port`` (TLS with ``tls_pem``), the replicas on loopback."""
    text = KIT.read_text()
    body = text[text.index("\ndefaults"):]
    body = re.sub(r"    bind :443 ssl crt \S+", f"    bind 127.0.0.1:{port} ssl crt {tls_pem}",
                  body)
    body = body.replace("    bind :80\n", "")
    for i, replica in enumerate(replicas, 1):
        # haproxy dials the replicas from 127.0.0.2: the one address they trust
        body = re.sub(rf"server replica{i} \S+ ",
                      f"server replica{i} 127.0.0.1:{replica} source 127.0.0.2 ", body)
    assert "10.0.0." not in body and ":443" not in body
    return "global\n    maxconn 256\n" + body


def test_haproxy_keeps_a_logged_in_user_served_when_a_replica_stops(tmp_path: Path) -> None:
    binary = require_binary("haproxy", "/usr/sbin/haproxy")
    settings = make_settings(tmp_path / "data", https=True, trusted_proxies=["127.0.0.2"])
    sm = make_db(settings)
    add_user(sm, settings, "hq", "auditor")
    apps = [create_app(settings, sessionmaker=sm, bus=ClosedBus()) for _ in range(2)]
    work = Path(tempfile.mkdtemp(prefix="secroom-lb-", dir=tmp_path))
    ca = make_ca(work / "certs")
    pem = work / "dashboard.pem"
    pem.write_bytes(ca.cert_file.read_bytes() + ca.key_file.read_bytes())
    port = free_port()
    with _replica(apps[0], settings) as one:
        cm_two = _replica(apps[1], settings)
        two = cm_two.__enter__()
        try:
            ports = [one, two]
            cfg = work / "haproxy.cfg"
            cfg.write_text(_config(pem, port, ports))
            check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True,
                                   text=True, check=False)
            assert check.returncode == 0, check.stdout + check.stderr
            proc = subprocess.Popen([binary, "-db", "-f", str(cfg)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until(lambda: port_open(port) or proc.poll() is not None, 20,
                           "haproxy to listen")
                with httpx.Client(base_url=f"https://127.0.0.1:{port}",
                                  verify=ssl.create_default_context(cafile=ca.ca_file),
                                  timeout=30) as web:
                    page = web.get("/login")
                    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                    assert page.status_code == 200 and token
                    r = web.post("/login", data={"username": "hq", "password": PASSWORD,
                                                 "csrf_token": token.group(1), "next": "/"})
                    assert r.status_code in (200, 303), r.text
                    assert web.get("/api/v1/me").json()["username"] == "hq"
                    # a wrong password, with a forged X-Forwarded-For: the dashboards record
                    # the browser's address (haproxy's header), not haproxy's, not the forged one
                    page = web.get("/login")
                    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                    assert token
                    web.post("/login", data={"username": "hq", "password": "wrong",
                                             "csrf_token": token.group(1), "next": "/"},
                             headers={"X-Forwarded-For": "203.0.113.9"})
                    with sm() as db:
                        seen = set(db.scalars(select(LoginAttempt.ip)))
                    assert seen == {"127.0.0.1"}, seen
                    # one replica stops (a deploy, a crash): every request is still answered,
                    # for the same session, by the other
                    cm_two.__exit__(None, None, None)
                    cm_two = None
                    answers = [web.get("/api/v1/me") for _ in range(20)]
                    assert [a.status_code for a in answers] == [200] * 20
                    assert {a.json()["username"] for a in answers} == {"hq"}
            finally:
                stop_process(proc)
        finally:
            if cm_two is not None:
                cm_two.__exit__(None, None, None)
