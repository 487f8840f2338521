"""Secrets never reach logs, events, stored records or error responses.

Representative flows run with every logger at DEBUG (SQLAlchemy's statement log included) and
stdout/stderr captured: log-in (right and wrong, a password typed into the user name field, a
user name that is an individual number), API token use, user and token creation, media
check-out with an approver's password, number-log rows carrying a number, backup key
generation / run / restore with a passphrase, node key generation, and an MQTT link with a
broker password. Then no password, token, session cookie, password hash, session pepper,
private key, passphrase, dedup key or 12-digit individual number may appear in the captured
logs and output, the emitted events, the audit log, anomalies, log-in attempts, stored events,
or any response (except the one page that shows a new token once)."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from backup import crypto
from dashboard.models import Anomaly, StoredEvent
from dashboard.models.audit import AuditRecord
from dashboard.models.auth import LoginAttempt, User
from tests.backup.conftest import Env, Recorder
from tests.dashboard.web.conftest import PASSWORD, WebApp

NUMBER = "123456789018"  # a made-up number that passes the check digit
SPACED = "1234 5678 9018"
TYPO = "Typed-Into-The-Name-Field-7731"  # a password typed into the user name field
NEW_PASSWORD = "another very long password 42"  # noqa: S105 - test secret
APPROVER_PASSWORD = "approver password 0000 xyz"  # noqa: S105 - test secret


def forms(secret: bytes | str) -> set[str]:
    """The ways a secret could show up in text: itself, hex, base64, base64url."""
    if isinstance(secret, str):
        return {secret}
    return {
        secret.hex(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    }


def assert_absent(secrets: dict[str, Iterable[bytes | str]], places: dict[str, str]) -> None:
    for what, values in secrets.items():
        for value in values:
            for form in forms(value):
                for where, text in places.items():
                    assert form not in text, f"{what} found in {where}"
    for where, text in places.items():
        assert not re.search(r"1234\D?5678\D?9018", text), f"an individual number in {where}"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)  # statements and parameters
    return caplog


def _login(client: Any, username: str, password: str) -> Any:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )


def test_web_flows_leak_no_secret(
    webapp_db: WebApp, debug_logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    w = webapp_db
    responses: list[str] = []
    admin, csrf = w.as_role("admin")
    h = {"x-csrf-token": csrf}
    anon = w.client()
    for user, pw in (
        (TYPO, TYPO),
        (NUMBER, "whatever password 1"),
        ("u_admin", TYPO),
        (SPACED, PASSWORD),
    ):
        r = _login(anon, user, pw)
        assert r.status_code == 401
        responses.append(r.text)
    r = _login(w.client(), "u_admin", PASSWORD)
    assert r.status_code == 303
    session_cookie = r.cookies.get("secroom_session")
    assert session_cookie
    # users and tokens
    r = admin.post(
        "/users",
        data={"username": "eve", "role": "auditor", "password": NEW_PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = admin.post(
        "/users",
        data={
            "username": "mallory",
            "role": "superuser",
            "password": NEW_PASSWORD,
            "csrf_token": csrf,
        },
    )
    assert r.status_code >= 400
    responses.append(r.text)
    r = admin.post(
        "/users/tokens",
        data={"username": "eve", "name": "bot", "scopes": ["read"], "csrf_token": csrf},
    )
    assert r.status_code == 201
    token = re.search(r"(srt_[A-Za-z0-9_-]+)", r.text)
    assert token
    secret_token = token.group(1)  # this page shows it once, on purpose; nothing else may
    bearer = {"authorization": f"Bearer {secret_token}"}
    responses.append(anon.get("/api/v1/me", headers=bearer).text)
    responses.append(anon.get("/api/v1/people", headers=bearer).text)
    r = anon.post("/api/v1/people", json={"id": "x", "name": "X"}, headers=bearer)
    assert r.status_code == 403
    responses.append(r.text)
    r = anon.get("/api/v1/me", headers={"authorization": f"Bearer {secret_token}x"})
    assert r.status_code == 401
    responses.append(r.text)
    # the approver's password on a media check-out: wrong, then too long for the field
    from tests.dashboard.media.conftest import add_people, medium_data

    with w.sm.begin() as db:
        add_people(db)
    r = admin.post("/api/v1/media", json=medium_data(), headers=h)
    assert r.status_code == 201, r.text
    cn = r.json()["control_number"]
    body = {
        "holder": "p2",
        "purpose": "年末調整",
        "due_back": "2026-12-01T09:00:00+09:00",
        "approved_by": "eve",
        "approver_password": APPROVER_PASSWORD,
    }
    for extra in ({}, {"approver_password": APPROVER_PASSWORD * 20}):
        r = admin.post(f"/api/v1/media/{cn}/check-out", json={**body, **extra}, headers=h)
        assert r.status_code in (400, 401, 403, 422), r.text
        responses.append(r.text)
    # individual numbers in number-log rows, good and bad, and in a person's name
    rows = [
        {
            "no": "1",
            "office": "HQ",
            "ts": "2026-11-02T10:00:00+09:00",
            "screen": "社員",
            "action": f"閲覧 {SPACED}",
            "purpose": "年末調整",
            "operator": "op1",
            "result": "成功",
            "terminal": "pc-01",
        },
        {
            "no": "2",
            "office": "HQ",
            "ts": f"not a time {NUMBER}",
            "screen": "社員",
            "action": "閲覧",
            "purpose": NUMBER,
            "operator": "op1",
            "result": "成功",
            "terminal": "pc-01",
        },
    ]
    r = admin.post("/api/v1/numlog/rows", json={"source": "sys", "rows": rows}, headers=h)
    responses.append(r.text)
    r = admin.post("/api/v1/people", json={"id": "p9", "name": f"山田 {NUMBER}"}, headers=h)
    # no record may hold a number: it is stored without it, and the caller is told
    assert r.status_code == 201 and r.json()["name"] == "山田 [個人番号削除]", r.text
    assert r.headers["x-secroom-notice"] == "number-removed"
    responses.append(r.text)
    r = admin.post("/api/v1/people", json={"id": "p8", "name": "x" * 500 + NUMBER}, headers=h)
    responses.append(r.text)
    for page in (
        "/audit",
        "/anomalies",
        "/numlog",
        "/users",
        "/api/v1/audit",
        "/api/v1/anomalies?state=all",
    ):
        responses.append(admin.get(page).text)

    out, err = capfd.readouterr()
    with w.sm() as db:
        hashes = list(db.scalars(select(User.password_hash)))
        stored = {
            "audit log": json.dumps(
                [
                    [a.action, a.target_id, a.before, a.after]
                    for a in db.scalars(select(AuditRecord))
                ],
                ensure_ascii=False,
                default=str,
            ),
            "anomalies": json.dumps(
                [[a.kind, a.subject, a.detail] for a in db.scalars(select(Anomaly))],
                ensure_ascii=False,
                default=str,
            ),
            "log-in attempts": json.dumps(
                [[a.username, a.ip] for a in db.scalars(select(LoginAttempt))]
            ),
            "stored events": json.dumps(
                [e.data for e in db.scalars(select(StoredEvent))], ensure_ascii=False, default=str
            ),
        }
    assert len(hashes) >= 2 and debug_logs.text  # the flows ran and the logs were captured
    assert_absent(
        {
            "password": [PASSWORD, TYPO, NEW_PASSWORD, APPROVER_PASSWORD],
            "API token": [secret_token, secret_token[12:]],
            "session cookie": [session_cookie],
            "password hash": [h.split("$")[-1] for h in hashes] + hashes,
            "session pepper": [w.settings.session_secret()],
        },
        {
            "logs": debug_logs.text,
            "stdout": out,
            "stderr": err,
            **{f"response {i}": t for i, t in enumerate(responses)},
            **stored,
        },
    )


def test_backup_and_key_flows_leak_no_secret(
    env: Env,
    tmp_path: Path,
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from controller.cli import main as secroom

    passphrase = "operators' passphrase 5521 horse"  # noqa: S105 - test secret
    ops = tmp_path / "ops"
    pf = tmp_path / "pf"
    pf.write_text(passphrase + "\n")
    rec = Recorder()
    assert (
        env.cli(
            "keygen",
            "--out",
            str(ops),
            "--passphrase-file",
            str(pf),
            "--scrypt-n",
            str(2**12),
            emit=rec,
        )
        == 0
    )
    key = crypto.load_private_key(ops / "backup.key", passphrase.encode())
    cfg = env.cfg_file.read_text().replace(str(env.cfg.public_key_file), str(ops / "backup.pub"))
    env.cfg_file.write_text(cfg)
    (env.vault / f"社員_{NUMBER}.csv").write_text(f"山田,{NUMBER}\n")
    assert env.cli("run", "--config", str(env.cfg_file), emit=rec) == 0
    keyargs = ["--key", str(ops / "backup.key"), "--passphrase-file", str(pf)]
    assert (
        env.cli(
            "restore",
            "latest",
            "--target",
            str(tmp_path / "out"),
            "--config",
            str(env.cfg_file),
            *keyargs,
            emit=rec,
        )
        == 0
    )
    assert env.cli("verify", "--read-data", "--config", str(env.cfg_file), *keyargs, emit=rec) == 0
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n")
    assert (
        env.cli(
            "restore",
            "latest",
            "--target",
            str(tmp_path / "out2"),
            "--config",
            str(env.cfg_file),
            "--key",
            str(ops / "backup.key"),
            "--passphrase-file",
            str(wrong),
            emit=rec,
        )
        == 5
    )
    dedup = bytes.fromhex(env.cfg.dedup_key_file.read_text().strip())
    # the node's signing key
    node_key_file = tmp_path / "node" / "node.key"
    assert secroom(["keys", "init", "--out", str(node_key_file)]) == 0
    assert node_key_file.stat().st_mode & 0o077 == 0  # 0600
    from controller.keys import load_private

    node_raw = load_private(node_key_file).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pem_body = "".join(node_key_file.read_text().splitlines()[1:-1])
    out, err = capfd.readouterr()
    assert rec.kinds().count("backup.snapshot") == 1 and "backup.failed" in rec.kinds()
    assert_absent(
        {
            "passphrase": [passphrase],
            "backup private key": [key.secret],
            "dedup key": [dedup],
            "node private key": [node_raw, pem_body],
        },
        {
            "logs": debug_logs.text,
            "stdout": out,
            "stderr": err,
            "events": json.dumps(rec.events, ensure_ascii=False, default=str),
        },
    )


@pytest.mark.integration
def test_mqtt_password_stays_in_its_file(
    debug_logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    from tests.security.acl_broker import AclBroker

    broker = AclBroker({"gw1": "broker-password-8812"})
    broker.start()
    try:
        link = broker.link("gw1")
        link.publish("secroom/v1/tokyo-hq/gw1/state", b'{"state":"online"}')
        stats = (
            json.dumps(link.stats(), default=str) if callable(getattr(link, "stats", None)) else ""
        )
        link.stop()
        wrong = broker.link("gw1", client_id="wrong", connect=False,
                            password="wrong-password-4471")  # noqa: S106
        assert not wrong.connected.wait(2)
        error = wrong.last_error or ""
        settings_repr = repr(wrong.settings)
        wrong.stop()
    finally:
        broker.stop()
    out, err = capfd.readouterr()
    assert_absent(
        {"broker password": ["broker-password-8812", "wrong-password-4471"]},
        {
            "logs": debug_logs.text,
            "stdout": out,
            "stderr": err,
            "stats": stats,
            "last_error": error,
            "settings": settings_repr,
        },
    )
