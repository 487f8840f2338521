"""The printing page, its CSV export, the person section and the JSON API: counts in ja and en,
formula-safe CSV, role checks."""

from __future__ import annotations

import csv
import io
import re

import pytest

from dashboard.auth.roles import ROLE_MATRIX, Role
from dashboard.models import Person
from dashboard.printing import queries as Q
from dashboard.web.csvsafe import neutralise
from dashboard.web.deps import TEMPLATES
from tests.dashboard.printing.conftest import Feed
from tests.dashboard.printing.seed import (
    EVIL_PRINTER,
    MONTH_START,
    NOW,
    month_of_prints,
    per_person,
    store,
)
from tests.dashboard.web.conftest import WebApp

EVIL_NAME = "=1+2;@SUM(A1)"


def seeded(pages: WebApp, feed: Feed):  # type: ignore[no-untyped-def]
    e = month_of_prints()
    store(feed, e)
    with pages.sm.begin() as db:
        db.add_all([Person(id="p1", name="山田 太郎", active=True, operator_ids=[],
                           cups_users=["u-p1"], created_at=NOW),
                    Person(id="p3", name=EVIL_NAME, active=True, operator_ids=[],
                           cups_users=[], created_at=NOW)])
    pages.clock.now = NOW
    return e


def tile(html: str, ident: str) -> int:
    m = re.search(rf'id="{ident}">(\d+)<', html)
    assert m, ident
    return int(m.group(1))


def test_page_counts_in_japanese_and_english(pages: WebApp, feed: Feed) -> None:
    e = seeded(pages, feed)
    client, _ = pages.as_role("auditor")
    html = client.get("/printing").text  # this month by default (site time)
    assert "印刷の記録" in html and "プリンター別" in html
    assert tile(html, "releases-total") == e.total(e.releases)
    assert tile(html, "pages-total") == e.total(e.pages)
    assert tile(html, "denials-total") == e.total(e.denials)
    assert tile(html, "expired-total") == e.total(e.expired)
    assert "山田 太郎" in html and "印刷権限なし" in html
    want = per_person(e)["p1"]
    row = re.search(r'<tr data-person="p1">(.*?)</tr>', html, re.S)
    assert row
    assert int(re.search(r'class="num releases">(\d+)<', row.group(1)).group(1)) == want["releases"]
    assert int(re.search(r'class="num pages">(\d+)', row.group(1)).group(1)) == want["pages"]

    client.cookies.set("secroom_lang", "en")
    en = client.get("/printing").text
    client.cookies.delete("secroom_lang")
    assert "Per printer" in en and "No print right" in en and "印刷の記録" not in en
    assert tile(en, "releases-total") == e.total(e.releases)

    only_p2 = client.get("/printing", params={"person": "p2", "kind": "release"}).text
    assert tile(only_p2, "releases-total") == e.releases["p2"]
    assert tile(only_p2, "denials-total") == 0
    everything = client.get("/printing", params={"start": "2026-10-01T00:00"}).text
    assert tile(everything, "releases-total") == e.total(e.releases) + e.before_month


def test_json_api_pages_and_summary(pages: WebApp, feed: Feed) -> None:
    e = seeded(pages, feed)
    token = pages.token("auditor", {"read"})
    client = pages.client()
    h = {"authorization": f"Bearer {token}"}
    first = client.get("/api/v1/printing/events", headers=h).json()
    assert len(first["items"]) == len(e.events) < 100 and first["next_before_id"] is None
    assert [i["id"] for i in first["items"]] == sorted((i["id"] for i in first["items"]),
                                                       reverse=True)
    older = client.get("/api/v1/printing/events", headers=h,
                       params={"before_id": first["items"][9]["id"]}).json()
    assert [i["id"] for i in older["items"]] == [i["id"] for i in first["items"][10:]]
    s = client.get("/api/v1/printing/summary", headers=h,
                   params={"start": MONTH_START.isoformat().replace("+00:00", "Z"),
                           "printer": "mfp-1"}).json()
    assert s["total"]["releases"] == e.printer_releases["mfp-1"]
    assert s["total"]["expired_jobs"] == e.total(e.expired)  # the expiry was on mfp-1
    assert client.get("/api/v1/printing/summary", headers=h,
                      params={"start": "2026-11-01T00:00"}).status_code == 422  # no offset
    assert client.get("/api/v1/printing/events", headers=h,
                      params={"kind": "door"}).status_code == 422


def test_csv_export_is_complete_and_formula_safe(pages: WebApp, feed: Feed) -> None:
    e = seeded(pages, feed)
    client, _ = pages.as_role("security_admin")
    page = client.get("/printing").text  # the page's CSV link carries its period
    link = re.search(r'href="(/printing\.csv\?[^"]*)"', page)
    assert link and "start=2026-11-01T00%3A00" in link.group(1)
    r = client.get("/printing.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    text = r.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][0] == "日時" and len(rows) - 1 == len(e.events)  # no period: everything
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    evil = [row for row in rows if row[2] == neutralise(EVIL_PRINTER)]
    assert len(evil) == e.printer_releases[EVIL_PRINTER] > 0
    assert all(row[4] == "'" + EVIL_NAME for row in evil)
    assert any(row[9].startswith("'=cmd") for row in rows)  # a denial's detail
    p1 = list(csv.reader(io.StringIO(
        client.get("/printing.csv", params={"person": "p1", "kind": "release",
                                         "start": "2026-11-01T00:00"})
        .content.decode("utf-8").lstrip("\ufeff"))))
    assert len(p1) - 1 == e.releases["p1"]


def test_person_section(pages: WebApp, feed: Feed) -> None:
    e = seeded(pages, feed)
    client, _ = pages.as_role("admin")
    html = client.get("/printing/people/p1").text
    assert "山田 太郎" in html and 'id="person-printing"' in html
    assert int(re.search(r'class="releases">(\d+)<', html).group(1)) == e.releases["p1"]
    assert int(re.search(r'class="expired">(\d+)<', html).group(1)) == e.expired["p1"]
    assert html.count('data-kind="print.') == 20  # the latest 20 records

    # the fragment as the person page includes it, with the page's own translator
    from dashboard.i18n import Translator
    from dashboard.printing.texts import PRINTING, Texts

    ctx = {"print_records": {
        "t": Texts(Translator("en", pages.settings.zone), PRINTING), "person_id": "p3",
        "month": MONTH_START, "totals": Q.PersonTotals(person_id="p3", releases=2),
        "recent": [], "limit": 20}}
    frag = TEMPLATES.env.get_template("printing/_person.html").render(
        t=Translator("ja", pages.settings.zone), **ctx)
    assert "Output records (printing)" in frag and 'class="releases">2<' in frag
    assert TEMPLATES.env.get_template("printing/_person.html").render().strip() == ""


@pytest.mark.parametrize("role", list(Role))
def test_roles(pages: WebApp, role: Role) -> None:
    client, _ = pages.as_role(role.value)
    for path, name in [("/printing", "printing.page"), ("/printing.csv", "printing.csv"),
                       ("/printing/people/p1", "printing.person"),
                       ("/api/v1/printing/events", "api.printing.events"),
                       ("/api/v1/printing/summary", "api.printing.summary")]:
        r = client.get(path)
        if role in ROLE_MATRIX[name]:
            assert r.status_code == 200, (role, path, r.status_code)
        else:
            assert r.status_code == 403, (role, path, r.status_code)
    assert (role == Role.backup_operator) == (client.get("/printing").status_code == 403)


def test_anonymous_is_refused(pages: WebApp) -> None:
    client = pages.client()
    r = client.get("/printing", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert client.get("/api/v1/printing/events").status_code == 401
    assert client.get("/printing.csv").status_code == 401
