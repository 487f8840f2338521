"""Chromium through the real dashboard: issue a handling report for one client chosen from the
list, download it again later (byte for byte as issued), verify the downloaded file by upload,
supersede the issue with a reason (the old file then verifies as superseded), and issue a
deletion certificate from a backup purge."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from controller.envelope import now_utc
from dashboard.models.correlation import IssuedReport
from dashboard.models.events import StoredEvent
from dashboard.models.people import Person
from dashboard.numlog.service import import_csv
from dashboard.reports.clients import ClientIn, map_office, save_client
from dashboard.reports.dates import previous_month
from dashboard.reports.monthly import stored_file
from tests.dashboard.reports.test_monthly import pdf_text
from tests.dashboard.web.conftest import LiveDashboard, artifacts_dir

pytestmark = pytest.mark.integration
CLIENTS = ("株式会社さくら食品", "有限会社みどり運輸")
TIMEOUT = 60_000  # ms: the machine is shared; issuing renders three files


def _seed(live: LiveDashboard) -> str:
    now = now_utc()
    zone = live.settings.zone
    month = previous_month(now, zone)
    with live.sessionmaker.begin() as db:
        db.add(Person(id="p1", name="井上 通", operator_ids=["OP0001"], cups_users=[],
                      created_at=now))
        for name in CLIENTS:
            row = save_client(db, ClientIn(name=name), actor="seed", now=now)
            map_office(db, name, row.id, actor="seed", now=now)
        lines = ["NO,事業所名,日時,画面,処理,利用目的,処理者,結果"]
        for i in range(1, 7):
            lines.append(f"{i},{CLIENTS[i % 2]},{month.replace('-', '/')}/1{i} 10:00,個人情報,"
                         f"マイナンバー閲覧,年末調整,OP0001,閲覧")
        import_csv(db, ("\r\n".join(lines) + "\r\n").encode("utf-8"), source="cells", now=now,
                   zone=zone)
        db.add(StoredEvent(node="backup1", seq=1, kind="backup.pruned",
                           ts=now - timedelta(hours=3), received_at=now, boot="b",
                           clock="synced", data={"mode": "purge", "result": "ok",
                                                 "duration_s": 1.0,
                                                 "snapshots_changed": ["a->b"]},
                           prev="0" * 64, hash="1" * 64, sig="s"))
    return month


def _download(page: Any, selector: str, tmp: Path) -> bytes:
    with page.expect_download(timeout=TIMEOUT) as info:
        page.click(selector)
    path = tmp / info.value.suggested_filename
    info.value.save_as(path)
    return path.read_bytes()


def _verify(page: Any, data: bytes, tmp: Path) -> Any:
    f = tmp / "upload.pdf"
    f.write_bytes(data)
    page.set_input_files("#upload input[name=file]", str(f))
    page.click("#upload button[type=submit]")
    return page.wait_for_selector("#verify-result", timeout=TIMEOUT)


def test_issue_download_verify_supersede_and_certify(live_dashboard: LiveDashboard,
                                                     browser_page: Any,
                                                     tmp_path: Path) -> None:
    live, page = live_dashboard, browser_page
    month = _seed(live)
    shots = artifacts_dir()
    page.goto(live.base_url + "/reports")
    page.fill("input[name=username]", live.username)
    page.fill("input[name=password]", live.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#monthly")
    options = page.locator("#report-client option").all_inner_texts()
    assert options[:2] == sorted(CLIENTS) and options[-1] == "社内用(全委託元)"
    assert page.input_value("#monthly input[name=month]") == month
    page.select_option("#report-client", label=CLIENTS[0])
    page.click("#monthly button[type=submit]")
    page.wait_for_selector("#report-flash", timeout=TIMEOUT)
    with live.sessionmaker() as db:
        first = db.scalars(select(IssuedReport)).one()
        assert (first.org, first.month, first.lang) == (CLIENTS[0], month, "ja")
    row = f'tr[data-report="{first.number}"]'
    assert CLIENTS[0] in page.inner_text(row)
    page.screenshot(path=str(shots / "reports-issued.png"), full_page=True)

    # later: download the issue again, as issued, and verify the file by upload
    page.goto(live.base_url + "/reports")
    pdf = _download(page, f"{row} a.download-pdf", tmp_path)
    with live.sessionmaker() as db:
        assert pdf == stored_file(db, fmt="pdf", report_id=first.id)
    text = pdf_text(pdf, tmp_path)
    assert f"{CLIENTS[0]} 御中" in text and CLIENTS[1] not in text
    result = _verify(page, pdf, tmp_path)
    assert result.get_attribute("data-ok") == "true", result.inner_text()
    assert f"報告書 第 {first.number} 号" in result.inner_text()

    # supersede with a reason: the old file no longer verifies, and says why
    page.goto(live.base_url + "/reports")
    page.fill(f"{row} input[name=reason]", "利用目的の記載誤りを訂正")
    page.click(f"{row} .supersede-form button[type=submit]")
    page.wait_for_selector("#report-flash", timeout=TIMEOUT)
    with live.sessionmaker() as db:
        second = db.scalars(select(IssuedReport).where(
            IssuedReport.supersedes == first.id)).one()
    assert "利用目的の記載誤りを訂正" in page.inner_text(f"{row} .report-status")
    assert second.number in page.inner_text(f"{row} .report-status")
    result = _verify(page, pdf, tmp_path)
    assert result.get_attribute("data-ok") == "false"
    assert (f"第 {second.number} 号 により差し替えられています(理由: 利用目的の記載誤りを訂正)"
            in result.inner_text())
    page.screenshot(path=str(shots / "reports-superseded.png"), full_page=True)

    # a deletion certificate from the backup purge
    page.goto(live.base_url + "/reports/certificates")
    page.wait_for_selector("#cert-form")
    source = page.locator("#cert-source option[data-kind=backup_purge]")
    page.select_option("#cert-source", value=source.get_attribute("value"))
    page.select_option("#cert-form select[name=client_id]", label=CLIENTS[1])
    page.select_option("#cert-form select[name=person_id]", label="井上 通")
    page.fill("#cert-form input[name=reason]", "退職後の保存期間満了")
    page.fill("#cert-form input[name=subject]", "元従業員 山田 太郎")
    page.click("#cert-form button[type=submit]")
    flash = page.wait_for_selector("#cert-flash", timeout=TIMEOUT).inner_text()
    number = flash.split("削除証明書 ")[1].split(" ")[0]
    cert = _download(page, f'tr[data-certificate="{number}"] a.download-pdf', tmp_path)
    text = pdf_text(cert, tmp_path)
    for word in (f"{CLIENTS[1]} 御中", "削除証明書", "担当者 井上 通", "対象者 元従業員 山田 太郎",
                 "バックアップ全世代からの消去"):
        assert word in text, word
    page.screenshot(path=str(shots / "reports-certificate.png"), full_page=True)
