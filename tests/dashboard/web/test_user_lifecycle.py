"""A dashboard user's credential lifecycle, driven through the users page as an admin does:
deactivate (log-in, sessions and API tokens all stop), reactivate, reset the password (a
temporary one that expires and must be replaced), log out everywhere; each audited; the last
active admin stays."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from dashboard.audit import verify_audit
from dashboard.auth.lifecycle import LastAdminError, set_active
from dashboard.i18n import catalogue
from dashboard.models import AuditRecord
from dashboard.models.auth import Session, User
from tests.dashboard.web.conftest import (
    PASSWORD,
    TestClient,
    WebApp,
    add_user,
    login,
    post_login,
)
from tests.dashboard.web.test_security import login_status
from tests.support import wait_until

NEW_PASSWORD = "a password of my own choosing"  # noqa: S105 - test users only


def user_id(webapp: WebApp, username: str) -> int:
    with webapp.sm() as db:
        uid = db.scalar(select(User.id).where(User.username == username))
    assert uid is not None
    return uid


def act(admin: TestClient, csrf: str, webapp: WebApp, username: str, action: str):  # type: ignore[no-untyped-def]
    return admin.post(f"/users/{user_id(webapp, username)}/{action}",
                      data={"csrf_token": csrf}, follow_redirects=False)


def audit_of(webapp: WebApp, username: str) -> list[tuple[str, str, dict[str, object]]]:
    with webapp.sm() as db:
        assert verify_audit(db).ok
        rows = db.scalars(select(AuditRecord).where(AuditRecord.target_id == username)
                          .order_by(AuditRecord.seq))
        return [(r.action, r.actor, r.after) for r in rows]


def test_deactivate_stops_log_in_sessions_and_tokens_then_reactivate(webapp: WebApp) -> None:
    admin, csrf = webapp.as_role("admin")
    eve, _ = webapp.as_role("auditor")  # u_auditor, logged in
    token = webapp.token("auditor", {"read"})
    bearer = {"authorization": f"Bearer {token}"}
    assert eve.get("/api/v1/me").status_code == 200
    assert webapp.client().get("/api/v1/me", headers=bearer).status_code == 200

    r = act(admin, csrf, webapp, "u_auditor", "deactivate")
    assert r.status_code == 303
    assert eve.get("/api/v1/me").status_code == 401  # the session ended at once
    assert webapp.client().get("/api/v1/me", headers=bearer).status_code == 401
    assert login_status(webapp, webapp.client(), "u_auditor", PASSWORD) == 401
    with webapp.sm() as db:
        assert db.scalar(select(Session).where(Session.user_id == user_id(
            webapp, "u_auditor"))) is None
    page = admin.get("/users").text
    row = re.search(r'<tr data-user="u_auditor">.*?</tr>', page, re.S)
    assert row and catalogue("ja")["users.deactivated"] in row.group(0)
    assert "/reactivate" in row.group(0)

    assert act(admin, csrf, webapp, "u_auditor", "reactivate").status_code == 303
    assert login_status(webapp, webapp.client(), "u_auditor", PASSWORD) == 303
    assert webapp.client().get("/api/v1/me", headers=bearer).status_code == 200
    assert audit_of(webapp, "u_auditor") == [
        ("user.deactivate", "u_admin", {"active": False, "sessions_ended": 1}),
        ("user.reactivate", "u_admin", {"active": True}),
    ]


def test_the_last_active_admin_cannot_be_deactivated(webapp: WebApp) -> None:
    admin, csrf = webapp.as_role("admin")
    add_user(webapp.sm, webapp.settings, "root2", "admin")
    assert act(admin, csrf, webapp, "root2", "deactivate").status_code == 303
    r = act(admin, csrf, webapp, "u_admin", "deactivate")  # the only active admin: itself
    assert r.status_code == 409
    assert catalogue("ja")["users.last_admin"] in r.text
    assert admin.get("/api/v1/me").status_code == 200
    assert [a for a, _, _ in audit_of(webapp, "u_admin")] == []
    # with a second active admin, an admin may step down (and is logged out)
    assert act(admin, csrf, webapp, "root2", "reactivate").status_code == 303
    assert act(admin, csrf, webapp, "u_admin", "deactivate").status_code == 303
    assert admin.get("/api/v1/me").status_code == 401


def test_two_admins_deactivating_each_other_at_once_leave_one(
    sm: sessionmaker[DbSession], tmp_path, engine  # type: ignore[no-untyped-def]
) -> None:
    """Serialised: the second transaction waits for the first and then sees no admin left."""
    from tests.dashboard.web.conftest import make_settings

    settings = make_settings(tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    for name in ("a1", "a2"):
        add_user(sm, settings, name, "admin")
    outcome: dict[str, object] = {}
    first = sm()
    set_active(first, first.scalars(select(User).where(User.username == "a1")).one(), False)

    def second() -> None:
        with sm() as db:
            try:
                set_active(db, db.scalars(select(User).where(User.username == "a2")).one(),
                           False)
                db.commit()
                outcome["second"] = "deactivated"
            except LastAdminError:
                db.rollback()
                outcome["second"] = "refused"

    worker = threading.Thread(target=second)
    worker.start()
    if engine.dialect.name == "postgresql":  # the second one waits on the first's lock
        with engine.connect() as conn:
            from sqlalchemy import text

            wait_until(lambda: conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )).scalar() == 1, 10, "the second deactivation to wait")
    first.commit()
    first.close()
    worker.join(30)
    assert outcome == {"second": "refused"}
    with sm() as db:
        assert db.scalars(select(User.username).where(User.active.is_(True))).all() == ["a2"]


def test_password_reset_gives_a_temporary_password_that_must_be_replaced(
    webapp: WebApp,
) -> None:
    admin, csrf = webapp.as_role("admin")
    eve, _ = webapp.as_role("auditor")
    r = act(admin, csrf, webapp, "u_auditor", "password-reset")
    assert r.status_code == 200
    shown = re.search(r'id="temporary-password" data-user="u_auditor">[^<]*: ([^<\s]+)</p>',
                      r.text)
    assert shown, r.text
    temporary = shown.group(1)
    assert eve.get("/api/v1/me").status_code == 401  # logged out at once
    assert login_status(webapp, webapp.client(), "u_auditor", PASSWORD) == 401  # old one dead

    user = webapp.client()
    r = post_login(user, "u_auditor", temporary, next_="/people")
    assert r.status_code == 303 and r.headers["location"] == "/account/password"
    # nothing else is open to this session until the user sets their own password
    r = user.get("/people", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/account/password"
    r = user.get("/api/v1/me")
    assert r.status_code == 403 and r.json()["detail"] == "set a new password first"
    form = user.get("/account/password").text
    assert catalogue("ja")["account.must_change"] in form
    ucsrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert ucsrf
    data = {"current": temporary, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD,
            "csrf_token": ucsrf.group(1)}
    r = user.post("/account/password", data={**data, "current": "not the temporary one"})
    assert r.status_code == 400 and catalogue("ja")["account.current_wrong"] in r.text
    r = user.post("/account/password", data=data, follow_redirects=False)
    assert r.status_code == 303
    assert user.get("/api/v1/me").json()["username"] == "u_auditor"
    assert login_status(webapp, webapp.client(), "u_auditor", temporary) == 401
    assert login_status(webapp, webapp.client(), "u_auditor", NEW_PASSWORD) == 303
    trail = audit_of(webapp, "u_auditor")
    assert [(a, actor) for a, actor, _ in trail] == [
        ("user.password_reset", "u_admin"), ("user.password_change", "u_auditor")]
    assert trail[0][2]["must_change_password"] is True
    assert temporary not in str(trail) and NEW_PASSWORD not in str(trail)


def test_a_temporary_password_expires(webapp: WebApp) -> None:
    admin, csrf = webapp.as_role("admin")
    webapp.as_role("auditor")
    r = act(admin, csrf, webapp, "u_auditor", "password-reset")
    shown = re.search(r'id="temporary-password" data-user="u_auditor">[^<]*: ([^<\s]+)</p>',
                      r.text)
    assert shown
    webapp.clock.advance(webapp.settings.temporary_password_ttl_s + 1)
    r = post_login(webapp.client(), "u_auditor", shown.group(1))
    assert r.status_code == 401
    assert catalogue("ja")["login.error.expired"] in r.text


def test_log_out_everywhere(webapp: WebApp) -> None:
    admin, csrf = webapp.as_role("admin")
    eve, _ = webapp.as_role("auditor")
    eve2 = webapp.client()
    login(eve2, "u_auditor")
    assert act(admin, csrf, webapp, "u_auditor", "sessions/end").status_code == 303
    assert eve.get("/api/v1/me").status_code == 401
    assert eve2.get("/api/v1/me").status_code == 401
    assert login_status(webapp, webapp.client(), "u_auditor", PASSWORD) == 303  # still active
    # for oneself: every other session ends, this one stays
    other = webapp.client()
    login(other, "u_admin")
    assert act(admin, csrf, webapp, "u_admin", "sessions/end").status_code == 303
    assert other.get("/api/v1/me").status_code == 401
    assert admin.get("/api/v1/me").status_code == 200
    assert audit_of(webapp, "u_auditor") == [
        ("user.sessions_end", "u_admin", {"sessions_ended": 2})]


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_users_page_offers_the_actions_in_both_languages(webapp: WebApp, lang: str) -> None:
    admin, _ = webapp.as_role("admin")
    webapp.as_role("auditor")
    admin.get(f"/lang/{lang}")
    page = admin.get("/users").text
    row = re.search(r'<tr data-user="u_auditor">.*?</tr>', page, re.S)
    assert row
    for key in ("users.deactivate", "users.reset", "users.sessions_end"):
        assert catalogue(lang)[key] in row.group(0), key
