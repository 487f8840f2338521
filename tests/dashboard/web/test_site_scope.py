"""Site- and client-scoped accounts (issue 24): a site's security admin sees and manages only its
site, headquarters' auditor reads every site, a client company's auditor reads only its
client's number records and reports. Checked through the pages and the API, by URL, on SQLite
and PostgreSQL (the filters are in the queries, not in the templates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dashboard.auth.scope import CLIENT_ROUTES, SITE_ROUTES, may_call
from dashboard.auth.service import AuthError, AuthService, Principal, check_scope
from dashboard.models import Anomaly, Node
from dashboard.models.correlation import IssuedReport
from dashboard.models.events import DoorAccess
from dashboard.models.numlog import NumberAccess
from dashboard.models.reports import Client, ClientOffice
from tests.dashboard.web.conftest import PASSWORD, WebApp, login

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SITES = {"osaka": "osaka-gw1", "nagoya": "nagoya-gw1"}


def _world(w: WebApp) -> dict[str, int]:
    """Two sites (a node, a tap and an anomaly each, and one headquarters anomaly), two clients
    (an office, a number-access row and an issued report each). Returns the ids a test uses."""
    ids: dict[str, int] = {}
    with w.sm.begin() as s:
        for i, (site, node) in enumerate(SITES.items()):
            s.add(Node(name=node, site=site, key_status="approved", public_key=f"k{i}",
                       roles="door_gateway", first_seen_at=T0))
            s.add(DoorAccess(node=node, seq=1, ts=T0 + timedelta(minutes=i),
                             door=f"door-{site}", direction="in", granted=True,
                             person_id=f"p-{site}"))
            a = Anomaly(kind="door_forced", node=node, subject=f"door-{site}",
                        dedupe_key=f"forced-{site}", first_seen_at=T0, last_seen_at=T0, at=T0)
            s.add(a)
            s.flush()
            ids[f"anomaly_{site}"] = a.id
        hq = Anomaly(kind="backup_missed", node=None, subject="nas", dedupe_key="backup",
                     first_seen_at=T0, last_seen_at=T0, at=T0)
        s.add(hq)
        for name in ("Alpha", "Beta"):
            c = Client(name=f"{name} 株式会社", created_at=T0)
            s.add(c)
            s.flush()
            ids[f"client_{name}"] = c.id
            s.add(ClientOffice(office=f"{name}本社", client_id=c.id))
            s.add(NumberAccess(row_key=f"row-{name}", source="csv", office=f"{name}本社", ts=T0,
                               screen="照会", action="参照", purpose=f"purpose-{name}",
                               operator="op1"))
            r = IssuedReport(month="2026-11", org=f"{name} 株式会社", lang="ja",
                             period_start=T0, period_end=T0, issued_at=T0, seal_sha256="0" * 64,
                             number=f"2026-{name}", client_id=c.id)
            s.add(r)
            s.flush()
            ids[f"report_{name}"] = r.id
    return ids


def _user(w: WebApp, username: str, role: str, **scope: object):
    auth = AuthService(w.settings, w.sm)
    with w.sm.begin() as db:
        auth.create_user(db, username=username, role=role, password=PASSWORD, now=T0,
                         **scope)  # type: ignore[arg-type]
    client = w.client()
    csrf = login(client, username) if scope.get("client_id") is None else _login_client(
        client, username)
    return client, csrf


def _login_client(client, username: str) -> str:
    """A client's auditor cannot open /nodes (where ``login`` reads the token): read it from
    the reports page."""
    import re

    from tests.dashboard.web.conftest import post_login
    r = post_login(client, username, next_="/reports")
    assert r.status_code == 303, r.text
    m = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/reports").text)
    assert m
    return m.group(1)


@pytest.fixture
def world(webapp_db: WebApp) -> tuple[WebApp, dict[str, int]]:
    return webapp_db, _world(webapp_db)


def test_a_site_admin_sees_only_its_site(world) -> None:
    w, ids = world
    osaka, _ = _user(w, "osaka_sec", "security_admin", site="osaka")
    assert [n["name"] for n in osaka.get("/api/v1/nodes").json()] == ["osaka-gw1"]
    doors = {e["door"] for e in osaka.get("/api/v1/events/door").json()["items"]}
    assert doors == {"door-osaka"}
    listed = {a["id"] for a in osaka.get("/api/v1/anomalies?state=all").json()}
    assert listed == {ids["anomaly_osaka"]}  # not nagoya's, not headquarters'
    page = osaka.get("/door-log")
    assert page.status_code == 200 and "door-osaka" in page.text and "door-nagoya" not in page.text
    csv = osaka.get("/door-log.csv")
    assert csv.status_code == 200 and "door-osaka" in csv.text and "door-nagoya" not in csv.text
    assert "nagoya-gw1" not in osaka.get("/nodes").text


def test_a_site_admin_cannot_read_or_change_another_site_by_url(world) -> None:
    w, ids = world
    osaka, csrf = _user(w, "osaka_sec", "security_admin", site="osaka")
    headers = {"X-CSRF-Token": csrf}
    assert osaka.get("/api/v1/nodes/nagoya-gw1/keys").status_code == 404
    assert osaka.get("/api/v1/nodes/osaka-gw1/keys").status_code == 200
    other = ids["anomaly_nagoya"]
    r = osaka.post(f"/api/v1/anomalies/{other}/ack", json={"reason": "not mine"},
                   headers=headers)
    assert r.status_code == 404
    r = osaka.post(f"/anomalies/{other}/ack", data={"reason": "x", "csrf_token": csrf},
                   follow_redirects=False)
    assert r.status_code == 404
    with w.sm() as s:
        assert s.get(Anomaly, other).state == "open"  # nothing changed
    r = osaka.post(f"/api/v1/anomalies/{ids['anomaly_osaka']}/ack", json={"reason": "checked"},
                   headers=headers)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    # pages that are not scoped by site (numlog, reports, backups, overview) are closed to it
    for path in ("/numlog", "/reports", "/backups", "/"):
        assert osaka.get(path).status_code == 403, path
    r = osaka.put("/api/v1/nodes/nagoya-gw1/roles", json={"roles": ["host_agent"]},
                  headers=headers)
    assert r.status_code == 403  # an admin's action: its role may not, whatever the site
    with w.sm() as s:
        assert s.get(Node, "nagoya-gw1").roles == "door_gateway"


def test_headquarters_auditor_reads_every_site(world) -> None:
    w, ids = world
    hq, _ = _user(w, "hq_audit", "auditor")
    assert {n["name"] for n in hq.get("/api/v1/nodes").json()} == set(SITES.values())
    doors = {e["door"] for e in hq.get("/api/v1/events/door").json()["items"]}
    assert doors == {"door-osaka", "door-nagoya"}
    assert len(hq.get("/api/v1/anomalies?state=all").json()) == 3
    page = hq.get("/numlog").text
    assert "purpose-Alpha" in page and "purpose-Beta" in page


def test_a_client_auditor_reads_only_its_records_and_reports(world) -> None:
    w, ids = world
    alpha, _ = _user(w, "alpha_audit", "auditor", client_id=ids["client_Alpha"])
    page = alpha.get("/numlog")
    assert page.status_code == 200
    assert "purpose-Alpha" in page.text and "purpose-Beta" not in page.text
    reports = alpha.get("/reports").text
    assert "2026-Alpha" in reports and "2026-Beta" not in reports and "Beta 株式会社" not in reports
    assert alpha.get(f"/reports/{ids['report_Beta']}/file/pdf").status_code == 404
    assert alpha.get(f"/reports/{ids['report_Alpha']}/file/pdf").status_code != 404
    for path in ("/api/v1/events/door", "/door-log", "/api/v1/nodes", "/api/v1/anomalies",
                 "/people", "/review"):
        assert alpha.get(path).status_code == 403, path


def test_scopes_are_checked_when_accounts_are_made() -> None:
    with pytest.raises(AuthError):
        check_scope("admin", "osaka", None)  # an admin runs the whole installation
    with pytest.raises(AuthError):
        check_scope("security_admin", None, 3)  # a client scope is an auditor's
    with pytest.raises(AuthError):
        check_scope("auditor", "osaka", 3)
    with pytest.raises(AuthError):
        check_scope("backup_operator", "osaka", None)  # backups are not divided by site
    check_scope("auditor", None, 3)
    check_scope("security_admin", "osaka", None)


def test_a_scoped_account_may_call_only_scoped_routes() -> None:
    site = Principal(1, "s", "security_admin", "session", site="osaka")  # type: ignore[arg-type]
    client = Principal(2, "c", "auditor", "session", client_id=1)  # type: ignore[arg-type]
    hq = Principal(3, "h", "auditor", "session")  # type: ignore[arg-type]
    assert may_call(site, "door_log.page") and may_call(site, "people.page")
    assert not may_call(site, "people.enrol_open") and not may_call(site, "snapshots.page")
    assert may_call(site, "review.page")
    assert may_call(client, "reports.page") and not may_call(client, "door_log.page")
    assert may_call(hq, "people.page")
    assert not SITE_ROUTES & {"users.page", "overview.page", "live.stream", "numlog.page"}
    assert not CLIENT_ROUTES & {"door_log.page", "api.nodes.list"}


def test_user_scope_survives_a_session(world) -> None:
    w, _ = world
    _user(w, "osaka_sec", "security_admin", site="osaka")
    from dashboard.models.auth import User
    with w.sm() as s:
        u = s.scalars(select(User).where(User.username == "osaka_sec")).one()
        assert (u.site, u.client_id) == ("osaka", None)


def test_cli_adds_scoped_accounts_on_a_migrated_database(tmp_path, capsys) -> None:
    from dashboard.db import make_engine, make_sessionmaker
    from dashboard.models.auth import User
    from dashboard.settings import load_settings
    from tests.dashboard.web.test_cli import parse

    config = tmp_path / "dashboard.toml"
    config.write_text(f'[dashboard]\nsite = "lab"\ndata_dir = "{tmp_path / "data"}"\n')
    args = parse(["db", "upgrade", "--config", str(config)])
    assert args.func(args) == 0  # the migrations, with this one's columns
    sm = make_sessionmaker(make_engine(load_settings(config).database_url))
    with sm.begin() as s:
        s.add(Client(name="Alpha 株式会社", created_at=T0))
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    base = ["user", "add", "--config", str(config), "--password-file", str(pw)]
    args = parse([*base, "--username", "osaka", "--role", "security_admin", "--site", "osaka"])
    assert args.func(args) == 0
    args = parse([*base, "--username", "alpha", "--role", "auditor", "--client",
                  "Alpha 株式会社"])
    assert args.func(args) == 0
    args = parse([*base, "--username", "boss", "--role", "admin", "--site", "osaka"])
    assert args.func(args) == 2 and "only a security admin" in capsys.readouterr().err
    args = parse([*base, "--username", "ghost", "--role", "auditor", "--client", "Nobody"])
    assert args.func(args) == 2 and "no client company" in capsys.readouterr().err
    with sm() as s:
        got = {u.username: (u.site, u.client_id) for u in s.scalars(select(User))}
    alpha_id = got["alpha"][1]
    assert got == {"osaka": ("osaka", None), "alpha": (None, alpha_id)} and alpha_id


def test_a_site_admin_reviews_only_its_sites_items(world) -> None:
    w, ids = world
    osaka, csrf = _user(w, "osaka_sec", "security_admin", site="osaka")
    mine, other = ids["anomaly_osaka"], ids["anomaly_nagoya"]
    listed = osaka.get("/api/v1/review?state=all").json()
    assert [i["id"] for i in listed["items"]] == [mine] and listed["total"] == 1
    assert sum(listed["by_state"].values()) == 1  # the counts are the site's too
    page = osaka.get("/review?state=all")
    assert page.status_code == 200 and f"/review/{mine}" in page.text
    assert f"/review/{other}" not in page.text
    assert osaka.get(f"/review/{other}").status_code == 404
    assert osaka.get(f"/api/v1/review/{other}").status_code == 404
    for action in ("acknowledge", "resolve", "escalate"):
        r = osaka.post(f"/api/v1/review/{other}/{action}", json={"reason": "not mine"},
                       headers={"X-CSRF-Token": csrf})
        assert r.status_code == 404, action
        r = osaka.post(f"/review/{other}/{action}", data={"reason": "x", "csrf_token": csrf},
                       follow_redirects=False)
        assert r.status_code == 404, action
    r = osaka.post("/review/bulk-acknowledge", data={"ids": [str(mine), str(other)],
                                                     "reason": "x", "csrf_token": csrf},
                   follow_redirects=False)
    assert r.status_code == 404
    with w.sm() as s:
        row = s.get(Anomaly, other)
        assert (row.state, row.severity) == ("open", "warning")  # nothing done to it
        assert s.get(Anomaly, mine).state == "open"  # the bulk refusal took nothing
    r = osaka.post(f"/api/v1/review/{mine}/acknowledge", json={"reason": "checked"},
                   headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    hq, _ = _user(w, "hq_audit", "auditor")
    assert hq.get("/api/v1/review?state=all").json()["total"] == 3


def test_the_users_page_shows_each_accounts_scope_by_name(world) -> None:
    w, ids = world
    _user(w, "osaka_sec", "security_admin", site="osaka")
    _user(w, "alpha_audit", "auditor", client_id=ids["client_Alpha"])
    admin, _ = w.as_role("admin")
    page = admin.get("/users").text
    assert "osakaのみ" in page and "委託元 Alpha 株式会社 のみ" in page
    admin.cookies.set("secroom_lang", "en")
    english = admin.get("/users").text
    assert "site osaka only" in english and "client Alpha 株式会社 only" in english
