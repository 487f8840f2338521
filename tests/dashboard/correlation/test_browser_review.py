"""Browser (Chromium): import a CP932 CSV through the upload page, see the findings, acknowledge
one, download the monthly report PDF and check its text with pdftotext."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.models.anomalies import Anomaly
from dashboard.models.people import Person
from tests.dashboard.reports.test_monthly import pdf_text
from tests.dashboard.web.conftest import (  # noqa: F401 - fixtures
    LiveDashboard,
    browser_page,
    live_dashboard,
)

pytestmark = pytest.mark.integration
ZONE = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def live(live_dashboard: LiveDashboard) -> Iterator[LiveDashboard]:  # noqa: F811
    with live_dashboard.sessionmaker() as s:
        s.add(Person(id="alice", name="Alice", operator_ids=["op-a"], cups_users=[],
                     created_at=datetime.now(UTC)))
        s.commit()
    yield live_dashboard


def test_import_review_acknowledge_and_report(live: LiveDashboard, browser_page: Any,  # noqa: F811
                                              tmp_path: Path) -> None:
    page = browser_page
    day = (datetime.now(UTC).astimezone(ZONE) - timedelta(days=1)).date()
    if day.month != datetime.now(UTC).astimezone(ZONE).month:
        day += timedelta(days=1)  # keep the rows in this month's report
    d = f"{day.year}/{day.month}/{day.day}"
    csv = ("NO,事業所名,日時,画面,処理,利用目的,処理者,結果\r\n"
           f"1,株式会社 セルズ,{d} 10:00,個人情報,マイナンバー閲覧,年末調整,op-a,閲覧\r\n"
           f"2,株式会社 セルズ,{d} 10:05,個人情報,マイナンバー更新,扶養控除,op-a,更新完了\r\n"
           f"3,株式会社 セルズ,{d} 10:07,個人情報,マイナンバー閲覧,年末調整,謎の処理者,閲覧\r\n"
           f"4,株式会社 セルズ,{d} 99:99,個人情報,マイナンバー閲覧,年末調整,op-a,閲覧\r\n")
    path = tmp_path / "cells.csv"
    path.write_bytes(csv.encode("cp932"))
    page.goto(live.base_url + "/")
    page.fill("input[name=username]", live.username)
    page.fill("input[name=password]", live.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state()
    page.goto(live.base_url + "/numlog")
    page.set_input_files("#upload input[name=file]", str(path))
    page.click("#upload button[type=submit]")
    result = page.wait_for_selector("#import-result").inner_text()
    assert re.search(r"3 件保存", result) and "5 行目" in result
    page.goto(live.base_url + "/review")  # findings are items of the review queue
    page.wait_for_selector("#review")
    body = page.inner_text("#review")
    assert "未登録の処理者" in body and "不在時の番号アクセス" in body
    page.click("#review tr[data-kind='corr.unknown_operator'] a.sentence-link")
    page.fill("#ack-form textarea[name=reason]", "登録予定")
    page.click("#ack-form button[type=submit]")
    page.wait_for_load_state()
    with live.sessionmaker() as s:
        a = s.scalars(select(Anomaly).where(Anomaly.kind == "corr.unknown_operator")).one()
        assert a.state == "acknowledged" and a.acknowledged_by == live.username
    page.goto(live.base_url + "/reports")
    page.fill("#monthly input[name=month]", f"{day.year}-{day.month:02d}")
    page.fill("#monthly input[name=org]", "株式会社 セルズ")
    with page.expect_download() as info:
        page.click("#monthly button[type=submit]")
    pdf = Path(info.value.path()).read_bytes()
    text = pdf_text(pdf, tmp_path)
    assert re.search(r"番号システム操作\(合計\) 3\b", text)
    assert "確認済" in text and "登録予定" in text
