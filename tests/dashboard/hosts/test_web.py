"""The room PCs' pages and the person's PC section: names, Japanese and English, roles."""

from __future__ import annotations

import re

from tests.dashboard.hosts.seed import NOW, store_day
from tests.dashboard.printing.conftest import Feed
from tests.dashboard.web.conftest import WebApp


def test_list_shows_who_is_logged_on_and_the_health(pages: WebApp, pc: Feed) -> None:
    store_day(pc, pages.sm)
    pages.clock.now = NOW
    client, _ = pages.as_role("auditor")
    html = client.get("/hosts").text
    row = re.search(r'<tr data-host="pc-01">(.*?)</tr>', html, re.S)
    assert row, html
    assert "佐藤 健二" in row.group(1) and "中村 花" not in row.group(1)  # hana logged off
    assert "/ 42%" in row.group(1) and "同期済み" in row.group(1)


def test_host_page_in_japanese_and_english(pages: WebApp, pc: Feed) -> None:
    store_day(pc, pages.sm)
    pages.clock.now = NOW
    client, _ = pages.as_role("security_admin")
    html = client.get("/hosts/pc-01").text
    sessions = re.search(r'id="host-sessions">(.*?)</section>', html, re.S).group(1)
    assert sessions.count("<tr data-session=") == 2 and "継続中" in sessions
    logons = re.search(r'id="host-logons">(.*?)</section>', html, re.S).group(1)
    assert "入室記録なし" in logons and "許可" in logons and "カード取り外し" in logons
    ops = re.search(r'id="host-operations">(.*?)</section>', html, re.S).group(1)
    assert "番号データ: コピー" in ops and "件数 1200" in ops
    assert "ほか 1195 件" in ops  # five names shown of the 1,200 files copied
    assert "cups.service" in html
    client.cookies.set("secroom_lang", "en")
    html = client.get("/hosts/pc-01").text
    assert "Not in the room" in html and "number data: copy" in html
    assert client.get("/hosts/pc-99").status_code == 404


def test_person_page_shows_their_pc_use(pages: WebApp, pc: Feed) -> None:
    store_day(pc, pages.sm)
    pages.clock.now = NOW
    client, _ = pages.as_role("admin")
    html = client.get("/people/hana").text
    section = re.search(r'id="person-pc">(.*?)</section>', html, re.S)
    assert section, html
    body = section.group(1)
    assert "ログオン" in body and "ロック" in body and "管理者権限の使用" in body
    assert "kenji" not in body  # only hana's records


def test_backup_operators_do_not_see_the_host_pages(pages: WebApp, pc: Feed) -> None:
    client, _ = pages.as_role("backup_operator")
    assert client.get("/hosts").status_code == 403


def test_system_usage_for_the_monthly_report(pages: WebApp, pc: Feed) -> None:
    from datetime import timedelta

    from dashboard.hosts.queries import system_usage
    from dashboard.reports.collect import gather

    store_day(pc, pages.sm)
    with pages.sm() as db:
        usage = system_usage(db, NOW - timedelta(days=1), NOW)
        assert [(c.person_id, c.granted, c.denied, dict(c.reasons)) for c in usage.logons] == [
            ("hana", 1, 0, {}), ("kenji", 0, 1, {"not_in_room": 1})]
        [copy] = usage.number_data
        assert (copy.person_id, copy.op, copy.count, copy.files) == ("hana", "copy", 1, 1200)
        assert (usage.sessions, usage.sudo, usage.failed_logins, usage.invalid) == (2, 1, 0, 0)
        report = gather(db, "2026-12", None, pages.settings.zone, NOW)
        rows = [(r.person, r.host, r.what, r.ok, r.code, r.files) for r in report.pcs]
        assert ("中村 花", "pc-01", "file_op", True, "copy", 1200) in rows  # annex 9: names
        assert ("佐藤 健二", "pc-01", "logon", False, "not_in_room", 0) in rows
        assert sum(1 for r in rows if r[2] == "file_op") == sum(o.count for o in usage.number_data)


def test_pc_records_join_the_persons_timeline(pages: WebApp, pc: Feed) -> None:
    from datetime import timedelta

    from dashboard.correlation.timeline import timeline

    store_day(pc, pages.sm)
    with pages.sm() as db:
        items = timeline(db, "hana", NOW - timedelta(days=1), NOW)
    pcs = [i for i in items if i.kind == "pc"]
    assert [i.text.split()[1] for i in pcs] == [
        "host.logon", "host.session", "host.file_access", "host.sudo", "host.locked",
        "host.session"]
    assert all(i.text.startswith("pc-01 ") for i in pcs)
    assert [i.ts for i in items] == sorted(i.ts for i in items)


def test_the_persons_day_shows_their_pc_records(pages: WebApp, pc: Feed) -> None:
    store_day(pc, pages.sm)
    pages.clock.now = NOW
    client, _ = pages.as_role("security_admin")
    html = client.get("/people/hana/timeline", params={"day": "2026-12-07"}).text
    rows = re.findall(r'<tr class="[^"]*" data-source="pc">(.*?)</tr>', html, re.S)
    assert len(rows) == 6, html[:2000]
    text = " ".join(rows)
    assert "PC ログオン" in text and "PC ロック" in text and "カード取り外し" in text
    assert "kenji" not in text and "佐藤" not in text
