"""hardware/central/haproxy.cfg in front of two real dashboards on one database: a user logged
in through it keeps being served (the session is in the database, not in a replica) when the
replica that served it stops, and the TLS it terminates is the one the config names."""

from __future__ import annotations

import re
import ssl
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from dashboard.app import create_app
from tests.dashboard.web.conftest import (
    PASSWORD,
    ClosedBus,
    add_user,
    make_db,
    make_settings,
    serve_app,
)
from tests.support import free_port, port_open, require_binary, stop_process, wait_until
from tests.support.tls import make_ca

KIT = Path(__file__).resolve().parents[2] / "hardware" / "central" / "haproxy.cfg"

pytestmark = pytest.mark.integration


def _config(tls_pem: Path, port: int, replicas: list[int]) -> str:
    """The shipped sections from ``defaults`` on, with this machine's addresses: the
    frontend on ``port`` (TLS with ``tls_pem``), the replicas on loopback."""
    text = KIT.read_text()
    body = text[text.index("\ndefaults"):]
    body = re.sub(r"    bind :443 ssl crt \S+", f"    bind 127.0.0.1:{port} ssl crt {tls_pem}",
                  body)
    body = body.replace("    bind :80\n", "")
    for i, replica in enumerate(replicas, 1):
        body = re.sub(rf"server replica{i} \S+ ", f"server replica{i} 127.0.0.1:{replica} ",
                      body)
    assert "10.0.0." not in body and ":443" not in body
    return "global\n    maxconn 256\n" + body


def test_haproxy_keeps_a_logged_in_user_served_when_a_replica_stops(tmp_path: Path) -> None:
    binary = require_binary("haproxy", "/usr/sbin/haproxy")
    settings = make_settings(tmp_path / "data", https=True)
    sm = make_db(settings)
    add_user(sm, settings, "hq", "auditor")
    apps = [create_app(settings, sessionmaker=sm, bus=ClosedBus()) for _ in range(2)]
    work = Path(tempfile.mkdtemp(prefix="secroom-lb-", dir=tmp_path))
    ca = make_ca(work / "certs")
    pem = work / "dashboard.pem"
    pem.write_bytes(ca.cert_file.read_bytes() + ca.key_file.read_bytes())
    port = free_port()
    with serve_app(apps[0]) as one:
        cm_two = serve_app(apps[1])
        two = cm_two.__enter__()
        try:
            ports = [int(u.rsplit(":", 1)[1]) for u in (one, two)]
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
