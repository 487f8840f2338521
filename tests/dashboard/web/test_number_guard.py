"""Text typed into the dashboard (forms and API bodies) keeps no individual number, in any digit
form: it is stored with the number replaced, the user is told (Japanese and English), and the
"number found" anomaly names the route and the field, never the value. Error details and log
lines that echo input carry no number either."""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import select

from controller.numguard import REDACTED
from dashboard.anomalies import raise_anomaly
from dashboard.models import Anomaly
from dashboard.models.audit import AuditRecord
from dashboard.models.auth import User
from dashboard.models.people import Person
from tests.dashboard.web.conftest import WebApp, make_db, make_settings
from tests.support import free_port, wait_until

NUMBER = "402123456786"  # made up; passes the check digit
FORMS = {  # the finding's examples: forms NFKC turns into the number
    "circled": "40212345678⑥",
    "small hyphen": "4021\ufe632345\ufe636786",
    "en space": "4021\u20022345\u20026786",
}


def _digits(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text) if c.isdigit())


def _db_text(webapp: WebApp) -> str:
    blob = b"".join(p.read_bytes() for p in Path(webapp.settings.data_dir).rglob("*.sqlite*"))
    return blob.decode("utf-8", "replace")


def _open_anomaly(webapp: WebApp, key: str) -> int:
    with webapp.sm.begin() as db:
        anomaly, _ = raise_anomaly(db, "door_forced", dedupe_key=key, now=datetime.now(UTC),
                                   subject="door forced")
        return anomaly.id


def _found(webapp: WebApp) -> list[Anomaly]:
    with webapp.sm() as db:
        return list(db.scalars(select(Anomaly).where(Anomaly.kind == "numlog.number_found")))


def test_an_acknowledge_reason_typed_in_a_form_keeps_no_number(webapp: WebApp) -> None:
    client, csrf = webapp.as_role("security_admin")
    aid = _open_anomaly(webapp, "a")
    r = client.post(f"/anomalies/{aid}/ack", follow_redirects=False, data={
        "csrf_token": csrf, "reason": f"本人確認 {FORMS['circled']} 済み"})
    with webapp.sm() as db:
        stored = db.get(Anomaly, aid)
        assert stored is not None and stored.reason == f"本人確認 {REDACTED} 済み"
        audit = json.dumps([[a.before, a.after] for a in db.scalars(select(AuditRecord))],
                           ensure_ascii=False)
    assert NUMBER not in _digits(audit) and NUMBER not in _digits(_db_text(webapp))
    assert r.status_code == 303 and r.headers["x-secroom-notice"] == "number-removed"
    assert "notice=number_removed" in r.headers["location"]
    [found] = _found(webapp)
    assert (found.severity, found.detail["route"], found.detail["fields"]) == (
        "critical", "anomalies.ack", ["reason"])
    assert found.detail["user"] == "u_security_admin" and NUMBER not in _digits(found.subject)
    page = client.get(r.headers["location"])  # the user is told, in their language
    assert "個人番号と思われる12桁の番号" in page.text and 'id="number-removed"' in page.text
    client.get("/lang/en?next=/", follow_redirects=False)
    english = client.get(r.headers["location"])
    assert "looks like an individual number" in english.text


def test_an_api_body_and_a_person_s_name_keep_no_number_but_a_near_miss_is_kept(
        webapp: WebApp) -> None:
    token = webapp.token("security_admin", {"read", "write"})
    aid = _open_anomaly(webapp, "b")
    api = webapp.client()
    r = api.post(f"/api/v1/anomalies/{aid}/ack", headers={"Authorization": f"Bearer {token}"},
                 json={"reason": f"checked {FORMS['small hyphen']}"})
    assert r.status_code == 200, r.text
    assert r.json()["reason"] == f"checked {REDACTED}"
    assert (r.headers["x-secroom-notice"], r.headers["x-secroom-notice-fields"]) == (
        "number-removed", "reason")
    client, csrf = webapp.as_role("security_admin")
    r = client.post("/people", follow_redirects=False, data={
        "csrf_token": csrf, "id": "p1", "name": f"山田 {FORMS['en space']}"})
    assert r.status_code == 303 and "notice=number_removed" in r.headers["location"]
    near = "4021\u20022345\u20026787"  # wrong check digit: kept exactly as typed
    r = client.post("/people", follow_redirects=False, data={
        "csrf_token": csrf, "id": "p2", "name": f"佐藤 {near}"})
    assert r.status_code == 303 and "x-secroom-notice" not in r.headers
    with webapp.sm() as db:
        assert db.get(Person, "p1").name == f"山田 {REDACTED}"  # type: ignore[union-attr]
        assert db.get(Person, "p2").name == f"佐藤 {near}"  # type: ignore[union-attr]
    assert NUMBER not in _digits(_db_text(webapp))
    assert {a.detail["route"] for a in _found(webapp)} == {"api.anomalies.ack", "people.create"}


def test_a_user_s_display_name_keeps_no_number(webapp: WebApp) -> None:
    client, csrf = webapp.as_role("admin")
    r = client.post("/users", follow_redirects=False, data={
        "csrf_token": csrf, "username": "tanaka", "role": "auditor",
        "password": "a long enough password 1", "display_name": f"田中 {FORMS['circled']}"})
    assert r.status_code == 303, r.text
    with webapp.sm() as db:
        user = db.scalar(select(User).where(User.username == "tanaka"))
        assert user is not None and user.display_name == f"田中 {REDACTED}"
    assert [a.detail["fields"] for a in _found(webapp)] == [["display_name"]]


def test_error_details_and_pages_do_not_echo_a_number(webapp: WebApp) -> None:
    token = webapp.token("security_admin", {"read", "write"})
    api = webapp.client()
    r = api.get(f"/api/v1/media/{NUMBER}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404 and NUMBER not in r.text and REDACTED in r.json()["detail"]
    client, csrf = webapp.as_role("admin")
    page = client.post("/users/tokens", data={"csrf_token": csrf, "username": NUMBER,
                                              "name": "t", "scopes": ["read"]})
    assert page.status_code == 404 and NUMBER not in _digits(page.text)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_uvicorn_access_lines_do_not_echo_a_number(tmp_path: Path) -> None:
    """As `secroom dashboard run` serves it: uvicorn at log level info logs every request line,
    path and query included."""
    import uvicorn

    from dashboard.app import create_app

    settings = make_settings(tmp_path / "data")
    app = create_app(settings, sessionmaker=make_db(settings))
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="info",
                            lifespan="off")
    server = uvicorn.Server(config)
    lines = _Lines()
    lines.setFormatter(logging.getLogger("uvicorn.access").handlers[0].formatter)
    logging.getLogger("uvicorn.access").addHandler(lines)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 15, "uvicorn to start")
        base = f"http://127.0.0.1:{config.port}"
        for path in (f"/api/v1/media/{NUMBER}", "/door-log?person=4021-2345-6786",
                     "/api/v1/people?q=4021%202345%206786", "/door-log?q=4021+2345+6786",
                     "/door-log?q=%EF%BC%94%EF%BC%90%EF%BC%92%EF%BC%912345678%E2%91%A5"):
            httpx.get(base + path, timeout=10)
        wait_until(lambda: len(lines.lines) >= 5, 10, "five access lines")
    finally:
        server.should_exit = True
        thread.join(10)
        logging.getLogger("uvicorn.access").removeHandler(lines)
    text = "\n".join(lines.lines)
    assert "/api/v1/media/" in text and REDACTED in text
    assert not re.search(r"4021\D{0,3}2345\D{0,3}6786", text), text
    assert text.count(REDACTED) == 5
