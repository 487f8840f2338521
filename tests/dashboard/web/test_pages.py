"""The pages and their JSON twins over real data: door log filters and CSV, presence,
overview in the site's time zone, Japanese by default and English on request."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from dashboard.models import Anomaly, AuditRecord, DoorAccess, Person, Presence
from dashboard.web.csvsafe import neutralise
from tests.dashboard.web.conftest import WebApp

DASHBOARD = Path(__file__).resolve().parents[3] / "dashboard"


def seed(webapp: WebApp, now: datetime) -> None:
    with webapp.sm.begin() as db:
        db.add_all([
            Person(id="p1", name="山田 太郎", active=True, operator_ids=[], cups_users=[],
                   created_at=now),
            Person(id="p2", name="=HYPERLINK(\"http://x\")", active=True, operator_ids=[],
                   cups_users=[], created_at=now),
        ])
        for i in range(150):
            db.add(DoorAccess(node="gw1", seq=i + 1, ts=now - timedelta(minutes=150 - i),
                              door="server-room" if i % 2 else "rack", direction="in",
                              granted=i % 3 != 0, reason=None if i % 3 else "not_permitted",
                              person_id="p1" if i % 5 else "p2", uid=f"0102{i:04d}",
                              reader="door-in"))
        db.add(Presence(person_id="p1", door="server-room", entered_at=now - timedelta(hours=2),
                        left_at=None))
        db.add(Presence(person_id="p2", door="server-room", entered_at=now - timedelta(hours=5),
                        left_at=now - timedelta(hours=4)))
        db.add(Anomaly(kind="door_forced", severity="critical", subject="server-room",
                       detail={}, dedupe_key="door_forced:x", count=1, state="open",
                       first_seen_at=now, last_seen_at=now))


def test_door_log_filters_and_pages(webapp_db: WebApp) -> None:
    webapp = webapp_db
    seed(webapp, webapp.clock())
    client, _ = webapp.as_role("auditor")
    page = client.get("/api/v1/events/door").json()
    assert len(page["items"]) == 100 and page["next_before_id"] is not None
    older = client.get(f"/api/v1/events/door?before_id={page['next_before_id']}").json()
    assert len(older["items"]) == 50 and older["next_before_id"] is None
    ids = [e["id"] for e in page["items"] + older["items"]]
    assert len(set(ids)) == 150 and ids == sorted(ids, reverse=True)

    denied = client.get("/api/v1/events/door?result=denied&door=rack").json()["items"]
    assert denied and all(not e["granted"] and e["door"] == "rack" for e in denied)
    with webapp.sm() as db:
        expected = db.scalars(select(DoorAccess.id).where(
            DoorAccess.granted.is_(False), DoorAccess.door == "rack")).all()
    assert sorted(e["id"] for e in denied) == sorted(expected)
    assert {e["reason"] for e in denied} == {"not_permitted"}

    # the API takes RFC 3339 instants; the page's filter takes site-local (Asia/Tokyo) times
    local = (webapp.clock() - timedelta(minutes=30)).astimezone(webapp.settings.zone)
    start = local.strftime("%Y-%m-%dT%H:%M")
    instant = local.replace(second=0, microsecond=0).isoformat()
    recent = client.get("/api/v1/events/door", params={"start": instant}).json()["items"]
    assert recent and all(
        datetime.fromisoformat(e["ts"]) >= webapp.clock() - timedelta(minutes=31) for e in recent)
    assert len(recent) in (29, 30, 31)

    html = client.get(f"/door-log?person=p1&result=denied&start={start}").text
    assert "山田 太郎" in html and "権限なし" in html  # translated denial reason (ja)
    assert client.get("/api/v1/events/door?start=yesterday").status_code == 422
    assert client.get(f"/api/v1/events/door?start={start}").status_code == 422  # no offset


def test_csv_export_is_complete_and_formula_safe(webapp_db: WebApp) -> None:
    webapp = webapp_db
    seed(webapp, webapp.clock())
    client, _ = webapp.as_role("security_admin")
    r = client.get("/door-log.csv?person=p2")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    text = r.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 1 + 30  # header + every p2 tap
    names = {row[6] for row in rows[1:]}
    assert names == {"'=HYPERLINK(\"http://x\")"}
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=x", "|cmd"):
        assert neutralise(cell).startswith("'")
    assert neutralise("山田") == "山田" and neutralise(None) == ""


def test_presence_now_and_history(webapp_db: WebApp) -> None:
    webapp = webapp_db
    seed(webapp, webapp.clock())
    client, _ = webapp.as_role("auditor")
    data = client.get("/api/v1/presence").json()
    assert [p["person_id"] for p in data["inside"]] == ["p1"]
    assert {p["person_id"] for p in data["stays"]} == {"p1", "p2"}
    html = client.get("/presence").text
    assert "山田 太郎" in html and "在室中" in html


def test_overview_counts_and_site_time(webapp_db: WebApp) -> None:
    webapp = webapp_db
    # 03:30 UTC is 12:30 in Tokyo: the hour buckets are local hours
    webapp.clock.now = datetime(2026, 11, 20, 3, 30, tzinfo=UTC)
    now = webapp.clock()
    with webapp.sm.begin() as db:
        for i, minutes in enumerate((5, 10, 70, 200)):
            db.add(DoorAccess(node="gw1", seq=i + 1, ts=now - timedelta(minutes=minutes),
                              door="server-room", direction="in", granted=True))
        db.add(DoorAccess(node="gw1", seq=9, ts=now - timedelta(minutes=1), door="server-room",
                          direction="in", granted=False, reason="expired"))
    client, _ = webapp.as_role("admin")
    data = client.get("/api/v1/overview").json()
    assert data["entries_today"] == 4
    hours = data["entries_per_hour"]
    assert hours[12] == 2 and hours[11] == 1 and hours[9] == 1 and sum(hours) == 4
    html = client.get("/").text
    assert 'data-hour="12"' in html and "<svg" in html
    assert "2026年11月20日(金) 12:25:00" in client.get("/door-log").text  # in Asia/Tokyo


def test_japanese_default_english_by_cookie(webapp_db: WebApp) -> None:
    webapp = webapp_db
    client, _ = webapp.as_role("auditor")
    assert "在室状況" in client.get("/presence").text
    r = client.get("/lang/en?next=/presence", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/presence"
    assert "Presence intervals" in client.get("/presence").text
    # an open redirect is not possible through the language switch
    r = client.get("/lang/ja?next=//evil.example/x", follow_redirects=False)
    assert r.headers["location"] == "/"


def test_catalogues_cover_every_key_in_both_languages() -> None:
    import re

    ja = json.loads((DASHBOARD / "locales/ja.json").read_text(encoding="utf-8"))
    en = json.loads((DASHBOARD / "locales/en.json").read_text(encoding="utf-8"))
    assert set(ja) == set(en)
    used: set[str] = set()
    # the web layer's own templates and routers; feature pages (templates/<feature>/) layer
    # their own tables over this catalogue
    for path in [*DASHBOARD.joinpath("templates").glob("*.html"),
                 *DASHBOARD.joinpath("web").glob("*.py")]:
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z0-9_.]+)["']""", path.read_text()))
    assert used, "no translated keys found"
    assert used <= set(ja), sorted(used - set(ja))


def test_anomaly_ack_is_audited_and_auditor_cannot(webapp_db: WebApp) -> None:
    webapp = webapp_db
    seed(webapp, webapp.clock())
    with webapp.sm() as db:
        aid = db.scalar(select(Anomaly.id))
    auditor, csrf_a = webapp.as_role("auditor")
    r = auditor.post(f"/api/v1/anomalies/{aid}/ack", json={"reason": "seen"},
                     headers={"x-csrf-token": csrf_a})
    assert r.status_code == 403
    admin, csrf = webapp.as_role("security_admin")
    r = admin.post(f"/anomalies/{aid}/ack", data={"reason": "maintenance", "csrf_token": csrf},
                   follow_redirects=False)
    assert r.status_code == 303
    r = admin.post(f"/api/v1/anomalies/{aid}/ack", json={"reason": "again"},
                   headers={"x-csrf-token": csrf})
    assert r.status_code == 409
    assert admin.get("/api/v1/anomalies").json() == []
    with webapp.sm() as db:
        rec = db.scalar(select(AuditRecord).order_by(AuditRecord.seq.desc()))
        assert rec is not None and rec.action == "anomaly.acknowledge"
        assert rec.actor == "u_security_admin" and rec.after["reason"] == "maintenance"
    html = admin.get("/audit?verify=true").text
    assert "audit-verified" in html


def test_the_door_log_marks_uid_only_and_failed_cards(webapp_db: WebApp) -> None:
    webapp = webapp_db
    now = webapp.clock()
    with webapp.sm.begin() as db:
        db.add(Person(id="p1", name="山田 太郎", active=True, operator_ids=[], cups_users=[],
                      created_at=now))
        for seq, (granted, reason, cred) in enumerate(
                [(True, None, "weak"), (True, None, "verified"),
                 (False, "credential_failed", "failed")], start=1):
            db.add(DoorAccess(node="gw1", seq=seq, ts=now - timedelta(minutes=5 - seq),
                              door="office", direction="in", granted=granted, reason=reason,
                              person_id="p1", uid="0102030405060708", reader="office-in",
                              credential=cred))
    client, _ = webapp.as_role("auditor")
    items = client.get("/api/v1/events/door").json()["items"]
    assert [e["credential"] for e in items] == ["failed", "verified", "weak"]
    html = client.get("/door-log").text
    assert html.count("credential-weak") == 1 and "弱い" in html
    assert "複製の疑い" in html  # the credential_failed reason, in Japanese
    assert html.count("credential-verified") == 0  # a verified tap needs no mark
    client.get("/lang/en?next=/door-log")
    english = client.get("/door-log").text
    assert "Weak" in english and "possible clone" in english
