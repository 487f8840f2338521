"""Sessions, CSRF, throttling, tokens, headers and the absence of any external asset."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from dashboard.auth.middleware import CSP
from dashboard.auth.passwords import hash_password, verify_password
from dashboard.models.auth import ApiToken, LoginAttempt, Session, User
from dashboard.settings import DashboardSettings
from tests.dashboard.web.conftest import PASSWORD, WebApp, add_user, login

DASHBOARD = Path(__file__).resolve().parents[3] / "dashboard"


def login_status(webapp: WebApp, client, username: str, password: str) -> int:  # type: ignore[no-untyped-def]
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    return r.status_code


def test_security_headers_on_every_response(webapp: WebApp) -> None:
    client, _ = webapp.as_role("admin")
    for path in ("/", "/health", "/login", "/static/app.css", "/api/v1/overview", "/nope"):
        r = client.get(path)
        h = r.headers
        assert h["content-security-policy"] == CSP, path
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"
        assert "camera=()" in h["permissions-policy"]
    assert "frame-ancestors 'none'" in CSP and "default-src 'self'" in CSP
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP


def test_no_inline_script_no_inline_style_no_external_asset() -> None:
    for path in [
        *DASHBOARD.joinpath("templates").rglob("*.html"),
        *DASHBOARD.joinpath("static").rglob("*"),
    ]:
        if path.is_dir() or "vendor" in path.parts or path.name == "LICENSE":
            continue  # vendored libraries: checked below for what they load
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline script in {path}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"inline event handler in {path}"
        assert not re.search(r"\sstyle\s*=", text), f"inline style in {path}"
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), f"external in {path}"
        assert "@import" not in text and "url(http" not in text, path


def test_vendored_chart_library_loads_nothing_from_elsewhere() -> None:
    vendor = DASHBOARD / "static" / "vendor" / "uplot"
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        text = (vendor / name).read_text(encoding="utf-8")
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), name
        assert "@import" not in text and "url(http" not in text and "fetch(" not in text, name
    assert (vendor / "LICENSE").read_text(encoding="utf-8").startswith("The MIT License")


def test_session_cookie_flags(webapp: WebApp) -> None:
    add_user(webapp.sm, webapp.settings, "alice", "admin")
    client = webapp.client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    cookie = [c for c in r.headers.get_list("set-cookie") if c.startswith("secroom_session=")][0]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in this test; see the https variant below


def test_secure_cookie_when_https(tmp_path: Path) -> None:
    from dashboard.app import create_app
    from tests.dashboard.web.conftest import TestClient, make_db

    settings = DashboardSettings(data_dir=tmp_path, https=True)
    sm = make_db(settings)
    add_user(sm, settings, "alice", "admin")
    client = TestClient(create_app(settings, sessionmaker=sm), base_url="https://testserver")
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    cookie = [c for c in r.headers.get_list("set-cookie") if "secroom_session=" in c][0]
    assert cookie.startswith("__Host-secroom_session=") and "Secure" in cookie
    assert "strict-transport-security" in r.headers


def test_secrets_are_stored_hashed_never_plain(webapp: WebApp) -> None:
    client, _ = webapp.as_role("admin")
    session_cookie = client.cookies.get("secroom_session")
    token = webapp.token("admin", {"read"})
    with webapp.sm() as db:
        user = db.scalar(select(User).where(User.username == "u_admin"))
        assert user is not None and user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        hashes = [s.token_hash for s in db.scalars(select(Session))]
        assert session_cookie and session_cookie not in hashes and len(hashes[0]) == 64
        tok = db.scalar(select(ApiToken))
        assert tok is not None and token not in tok.token_hash and tok.prefix == token[:12]
        assert "token=***" in repr(tok)


def test_password_policy_and_verification() -> None:
    stored = hash_password("a long enough password")
    assert verify_password(stored, "a long enough password")
    assert not verify_password(stored, "a long enough passworD")
    assert not verify_password(None, "anything at all here")
    assert not verify_password("not-a-hash", "anything at all here")
    with pytest.raises(ValueError, match="at least 12"):
        hash_password("short")


def test_form_post_without_or_with_wrong_csrf_is_refused(webapp: WebApp) -> None:
    client, csrf = webapp.as_role("admin")
    data = {"id": "p1", "name": "Taro"}
    assert client.post("/people", data=data).status_code == 403
    assert client.post("/people", data={**data, "csrf_token": "x" * 43}).status_code == 403
    r = client.post("/people", data={**data, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/people/p1")


def test_json_call_with_session_needs_csrf_header_token_call_does_not(webapp: WebApp) -> None:
    client, csrf = webapp.as_role("admin")
    body = {"id": "p2", "name": "Hanako"}
    assert client.post("/api/v1/people", json=body).status_code == 403
    assert (
        client.post("/api/v1/people", json=body, headers={"x-csrf-token": csrf}).status_code == 201
    )
    token = webapp.token("admin", {"read", "write"})
    anon = webapp.client()
    r = anon.post(
        "/api/v1/people",
        json={"id": "p3", "name": "Jiro"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text


def test_cross_origin_state_change_is_refused(webapp: WebApp) -> None:
    client, csrf = webapp.as_role("admin")
    r = client.post(
        "/people",
        data={"id": "p9", "name": "X", "csrf_token": csrf},
        headers={"origin": "http://evil.example"},
    )
    assert r.status_code == 403 and "cross-origin" in r.json()["detail"]


def test_login_form_needs_its_csrf_cookie(webapp: WebApp) -> None:
    add_user(webapp.sm, webapp.settings, "bob", "auditor")
    client = webapp.client()
    r = client.post(
        "/login",
        data={"username": "bob", "password": PASSWORD, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and "secroom_session" not in client.cookies


def strict(webapp: WebApp) -> WebApp:
    """The same database behind an app with low throttle limits (fewer slow argon2 calls)."""
    from dashboard.app import create_app
    from dashboard.settings import LoginThrottle

    settings = webapp.settings.model_copy(update={"login_throttle": LoginThrottle(
        window_s=600, max_failures_per_user=3, max_failures_per_ip=5)})
    app = create_app(settings, sessionmaker=webapp.sm, clock=webapp.clock)
    return WebApp(settings, webapp.sm, app, webapp.clock)


def test_login_throttled_per_user_then_per_ip(webapp: WebApp) -> None:
    webapp = strict(webapp)
    add_user(webapp.sm, webapp.settings, "carol", "auditor")
    client = webapp.client()
    limit = webapp.settings.login_throttle.max_failures_per_user
    for _ in range(limit):
        assert login_status(webapp, client, "carol", "wrong password!!") == 401
    # even the right password is refused while throttled
    assert login_status(webapp, client, "carol", PASSWORD) == 429
    webapp.clock.advance(webapp.settings.login_throttle.window_s + 1)
    assert login_status(webapp, client, "carol", PASSWORD) == 303
    with webapp.sm() as db:
        assert db.scalar(select(LoginAttempt).where(LoginAttempt.success.is_(True)))


def test_login_throttled_per_ip_across_usernames(webapp: WebApp) -> None:
    webapp = strict(webapp)
    add_user(webapp.sm, webapp.settings, "dave", "auditor")
    client = webapp.client()
    per_ip = webapp.settings.login_throttle.max_failures_per_ip
    for i in range(per_ip):
        assert login_status(webapp, client, f"nobody{i}", "wrong password!!") == 401
    assert login_status(webapp, client, "dave", PASSWORD) == 429


def test_session_expires_when_idle_and_at_max_age(webapp: WebApp) -> None:
    client, _ = webapp.as_role("auditor")
    assert client.get("/api/v1/me").status_code == 200
    webapp.clock.advance(webapp.settings.session_idle_s + 1)
    assert client.get("/api/v1/me").status_code == 401
    r = client.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
    # a busy session still ends at its absolute expiry
    c2 = webapp.client()
    login(c2, "u_auditor")
    step = webapp.settings.session_idle_s // 2
    for _ in range(webapp.settings.session_max_age_s // step - 1):
        webapp.clock.advance(step)
        assert c2.get("/api/v1/me").status_code == 200
    webapp.clock.advance(step + 1)
    assert c2.get("/api/v1/me").status_code == 401


def test_logout_ends_the_session(webapp: WebApp) -> None:
    client, csrf = webapp.as_role("auditor")
    r = client.post("/logout", headers={"x-csrf-token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    client.cookies.clear()
    with webapp.sm() as db:
        assert db.scalar(select(Session)) is None


def test_token_scopes_revocation_and_pages(webapp: WebApp) -> None:
    read = webapp.token("admin", {"read"})
    anon = webapp.client()
    h = {"authorization": f"Bearer {read}"}
    assert anon.get("/api/v1/people", headers=h).status_code == 200
    r = anon.post("/api/v1/people", json={"id": "x1", "name": "X"}, headers=h)
    assert r.status_code == 403 and "write" in r.json()["detail"]
    # tokens are for the API only; pages need a browser session
    assert anon.get("/people", headers=h).status_code == 401
    with webapp.sm.begin() as db:
        row = db.scalar(select(ApiToken))
        assert row is not None
        row.revoked_at = webapp.clock()
    assert anon.get("/api/v1/people", headers=h).status_code == 401
    assert (
        anon.get("/api/v1/people", headers={"authorization": "Bearer srt_forged"}).status_code
        == 401
    )


def test_admin_creates_user_and_token_audited(webapp: WebApp) -> None:
    client, csrf = webapp.as_role("admin")
    r = client.post(
        "/users",
        data={
            "username": "eve",
            "role": "auditor",
            "password": "another long password",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = client.post(
        "/users/tokens",
        data={"username": "eve", "name": "report bot", "scopes": ["read"], "csrf_token": csrf},
    )
    assert r.status_code == 201
    secret = re.search(r"(srt_[A-Za-z0-9_-]+)", r.text)
    assert secret
    anon = webapp.client()
    me = anon.get("/api/v1/me", headers={"authorization": f"Bearer {secret.group(1)}"})
    assert me.json() == {"username": "eve", "role": "auditor", "via": "token"}
    audit = client.get("/api/v1/audit").json()["items"]
    assert [a["action"] for a in audit[:2]] == ["token.create", "user.create"]
    assert all("password" not in str(a["after"]) for a in audit)


def test_settings_mask_secrets_and_reject_unknown_keys(tmp_path: Path) -> None:
    from dashboard.settings import SettingsError, load_settings

    s = DashboardSettings(data_dir=tmp_path, database_url="postgresql://u:hunter2@db/x")
    assert "hunter2" not in repr(s) and "***" in repr(s)
    cfg = tmp_path / "d.toml"
    cfg.write_text('[dashboard]\nsite = "lab"\nbogus = 1\n')
    with pytest.raises(SettingsError, match="bogus"):
        load_settings(cfg)
    cfg.write_text('[dashboard]\nsite = "lab"\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(SettingsError, match="time zone"):
        load_settings(cfg)
    cfg.write_text(f'[dashboard]\nsite = "lab"\ndata_dir = "{tmp_path}"\n')
    loaded = load_settings(cfg)
    assert loaded.database_url == f"sqlite:///{tmp_path / 'dashboard.sqlite3'}"
    assert loaded.timezone == "Asia/Tokyo" and loaded.default_language == "ja"


def test_backup_operator_lands_on_a_page_its_role_may_see(webapp: WebApp) -> None:
    add_user(webapp.sm, webapp.settings, "bo", "backup_operator")
    client = webapp.client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post("/login", data={"username": "bo", "password": PASSWORD,
                                    "csrf_token": token.group(1), "next": "/"},
                    follow_redirects=False)
    assert r.headers["location"] == "/backups"  # last night's backups: their work
    assert client.get("/backups").status_code == 200
    assert client.get("/").status_code == 403


def test_ended_sessions_are_removed_at_the_next_login(webapp: WebApp) -> None:
    webapp.as_role("auditor")
    webapp.clock.advance(webapp.settings.session_max_age_s + 1)
    c2 = webapp.client()
    login(c2, "u_auditor")
    with webapp.sm() as db:
        assert len(db.scalars(select(Session)).all()) == 1
