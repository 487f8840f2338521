"""The web layer of the feature: CSV upload, JSON rows with a scoped token, findings with the
anomaly workflow (acknowledge with a comment, resolve with a reason, both audited), a person's
timeline, the report download; roles enforced by the dashboard's middleware."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dashboard.models.anomalies import Anomaly
from dashboard.models.audit import AuditRecord
from dashboard.models.people import Person
from tests.dashboard.web.conftest import WebApp, webapp  # noqa: F401 - fixture

NUMBER = "123456789018"
CSV = ("NO,事業所名,日時,画面,処理,利用目的,処理者,結果\r\n"
       "1,org,2026/10/5 10:00,個人情報,マイナンバー閲覧,年末調整,op-a,閲覧\r\n"
       f"2,org,2026/10/5 10:05,個人情報,マイナンバー閲覧,{NUMBER},op-a,閲覧\r\n"
       "3,org,2026/10/5 25:00,個人情報,マイナンバー閲覧,年末調整,op-a,閲覧\r\n"
       "4,org,2026/10/5 10:07,個人情報,マイナンバー閲覧,年末調整,謎,閲覧\r\n")


@pytest.fixture
def app(webapp: WebApp) -> Iterator[WebApp]:  # noqa: F811
    webapp.clock.now = datetime(2026, 10, 6, 0, 0, tzinfo=UTC)
    with webapp.sm() as s:
        s.add(Person(id="alice", name="Alice", operator_ids=["op-a"], cups_users=[],
                     created_at=webapp.clock.now))
        s.commit()
    yield webapp


def test_upload_then_workflow_then_report(app: WebApp) -> None:
    c, csrf = app.as_role("security_admin")
    r = c.post("/numlog/upload", data={"source": "cells"}, headers={"X-CSRF-Token": csrf},
               files={"file": ("cells.csv", CSV.encode("cp932"), "text/csv")})
    assert r.status_code == 200, r.text
    assert "3 件保存" in r.text or "3 stored" in r.text
    assert "4 行目" in r.text or "line 4" in r.text
    assert NUMBER not in r.text
    page = c.get("/findings")
    assert page.status_code == 200 and "number_in_log" in page.text and NUMBER not in page.text
    assert "unknown_operator" in page.text and "access_not_in_room" in page.text
    with app.sm() as s:
        a = s.scalars(select(Anomaly).where(Anomaly.kind == "corr.unknown_operator")).one()
    r = c.post(f"/anomalies/{a.id}/ack", data={"reason": "委託先の新人、登録予定",
                                               "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    r = c.post(f"/findings/{a.id}/resolve", data={"reason": "処理者を登録した",
                                                  "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    with app.sm() as s:
        got = s.get(Anomaly, a.id)
        assert got is not None and got.state == "resolved" and got.reason == "処理者を登録した"
        actions = [x.action for x in s.scalars(select(AuditRecord).order_by(AuditRecord.seq))]
    assert actions[-3:] == ["numlog.import", "anomaly.acknowledge", "anomaly.resolve"][-2:] \
        or actions[-2:] == ["anomaly.acknowledge", "anomaly.resolve"]
    tl = c.get("/api/v1/people/alice/timeline", params={"since": "2026-10-05",
                                                        "until": "2026-10-06"})
    assert tl.status_code == 200 and [i["kind"] for i in tl.json()] == ["access", "access"]
    r = c.post("/reports/monthly", data={"month": "2026-10", "client": "", "lang": "ja",
                                         "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303, r.text
    rid = re.search(r'href="/reports/(\d+)/file/pdf"', c.get(r.headers["location"]).text)
    assert rid is not None
    r = c.get(f"/reports/{rid.group(1)}/file/pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert "attachment" in r.headers["content-disposition"]


def test_json_rows_with_a_token_and_roles(app: WebApp) -> None:
    token = app.token("security_admin", {"write"})
    body = {"source": "api", "rows": [
        {"no": "1", "ts": "2026-10-05T10:00:00+09:00", "action": "マイナンバー閲覧",
         "operator": "op-a", "purpose": f"確認 {NUMBER}"}]}
    r = app.client().post("/api/v1/numlog/rows", json=body,
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1 and r.json()["redacted"] == 1 and NUMBER not in r.text
    again = app.client().post("/api/v1/numlog/rows", json=body,
                              headers={"Authorization": f"Bearer {token}"})
    assert again.json()["stored"] == 0 and again.json()["duplicate"] == 1
    read_only = app.token("auditor", {"read"})
    r = app.client().post("/api/v1/numlog/rows", json=body,
                          headers={"Authorization": f"Bearer {read_only}"})
    assert r.status_code in (401, 403)
    found = app.client().get("/api/v1/findings", params={"lang": "en"},
                             headers={"Authorization": f"Bearer {read_only}"})
    assert found.status_code == 200
    assert any(f["rule"] == "number_in_log" for f in found.json())
    assert not re.search(r"\d{12}", found.text)
    c, csrf = app.as_role("auditor")
    r = c.post("/numlog/upload", data={"source": "cells"}, headers={"X-CSRF-Token": csrf},
               files={"file": ("cells.csv", CSV.encode("cp932"), "text/csv")})
    assert r.status_code == 403
