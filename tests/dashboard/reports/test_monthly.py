"""The monthly handling report: counts checked in the PDF text (pdftotext), Japanese and
English; Excel-safe CSV; the seal detects later tampering with node events, the audit log and
the number-access rows of the period."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from dashboard.models.audit import AuditRecord
from dashboard.models.correlation import IssuedReport
from dashboard.models.events import StoredEvent
from dashboard.models.numlog import NumberAccess
from dashboard.reports.monthly import issue, verify_file
from tests.dashboard.correlation import world as W
from tests.dashboard.correlation.conftest import Month
from tests.support import require_binary

LATER = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)


def pdf_text(pdf: bytes, tmp: Path) -> str:
    require_binary("pdftotext")
    path = tmp / "r.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                         check=True)
    return " ".join(out.stdout.decode("utf-8").split())


def expected(m: Month) -> dict[str, int]:
    entries = sum(1 for e in m.world.events if e.kind == "door.access"
                  and e.data["direction"] == "in" and e.when.astimezone(W.ZONE).month == 10)
    prints = sum(1 for e in m.world.events if e.kind == "print.release")
    exports = sum(1 for r in m.world.rows if r[4] == "CSV出力")
    return {"entries": entries, "rows": len(m.world.rows), "prints": prints, "exports": exports}


def test_pdf_in_japanese_has_the_month_counts(month: Month, tmp_path: Path) -> None:
    with month.sm() as s:
        issued = issue(s, month="2026-10", org=W.ORG, lang="ja", fmt="pdf", zone=W.ZONE,
                       now=LATER, actor="admin1")
        s.commit()
    t = pdf_text(issued.content, tmp_path)
    e = expected(month)
    assert "特定個人情報 取扱状況報告書" in t and W.ORG in t
    assert re.search(rf"入室回数\(合計\) {e['entries']}\b", t)
    assert re.search(rf"番号システム操作\(合計\) {e['rows']}\b", t)
    assert re.search(rf"うち出力・エクスポート {e['exports']}\b", t)
    assert re.search(rf"印刷の解放\(合計\) {e['prints']}\b", t)
    assert re.search(r"2026-10-21 未実施", t) and re.search(r"2026-10-25 正常", t)
    assert "確認済 admin1: 警備会社に確認中" in t and "解決済" in t
    assert re.search(r"情報漏えいの発生の有無 調査中\(未対応の重大な異常 \d+ 件\)", t)
    assert issued.seal["audit"]["head_hash"] in t.replace(" ", "")
    with month.sm() as s:
        rec = s.get(IssuedReport, issued.record_id)
        assert rec is not None and rec.seal == issued.seal
    assert W.VALID_NUMBER not in t and "9018" not in t


def test_pdf_in_english(month: Month, tmp_path: Path) -> None:
    with month.sm() as s:
        issued = issue(s, month="2026-10", org=W.ORG, lang="en", fmt="pdf", zone=W.ZONE,
                       now=LATER)
        s.rollback()
    t = pdf_text(issued.content, tmp_path)
    e = expected(month)
    assert re.search(rf"Entries \(total\) {e['entries']}\b", t)
    assert re.search(rf"Number-system operations \(total\) {e['rows']}\b", t)
    assert "Whether any leak occurred" in t and "Under review" in t


def test_csv_opens_in_excel_and_verifies(month: Month) -> None:
    with month.sm() as s:
        issued = issue(s, month="2026-10", org=W.ORG, lang="ja", fmt="csv", zone=W.ZONE,
                       now=LATER)
        s.rollback()
    raw = issued.content
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # noqa: E501
    body = raw.decode("utf-8-sig")
    assert f"番号システム操作(合計),,,{expected(month)['rows']}" in body
    assert "secroom-seal," in body


@pytest.fixture(scope="module")
def sealed(month: Month) -> bytes:
    with month.sm() as s:
        issued = issue(s, month="2026-10", org=W.ORG, lang="ja", fmt="pdf", zone=W.ZONE,
                       now=LATER, actor="admin1")
        s.commit()
    with month.sm() as s:
        res = verify_file(s, issued.content)
    assert res.ok and res.checked_rows == len(month.world.rows) and res.checked_events > 2000
    return issued.content


@pytest.mark.parametrize("tamper", ["event_data", "event_removed", "audit", "row_edit",
                                    "row_removed"])
def test_verify_detects_tampering(month: Month, sealed: bytes, tamper: str) -> None:
    with month.sm() as s:
        ev = s.scalars(select(StoredEvent).where(StoredEvent.kind == "door.access")
                       .order_by(StoredEvent.seq).offset(100).limit(1)).one()
        row = s.scalars(select(NumberAccess).order_by(NumberAccess.id).limit(1)).one()
        if tamper == "event_data":
            s.execute(update(StoredEvent).where(StoredEvent.id == ev.id)
                      .values(data={**ev.data, "person_id": "P99"}))
        elif tamper == "event_removed":
            s.execute(text("DELETE FROM events WHERE id = :i"), {"i": ev.id})
        elif tamper == "audit":
            first = s.scalars(select(AuditRecord).order_by(AuditRecord.seq).limit(1)).one()
            s.execute(update(AuditRecord).where(AuditRecord.seq == first.seq)
                      .values(actor="someone-else"))
        elif tamper == "row_edit":
            s.execute(update(NumberAccess).where(NumberAccess.id == row.id)
                      .values(purpose="書き換え"))
        else:
            s.execute(text("DELETE FROM number_access WHERE id = :i"), {"i": row.id})
        res = verify_file(s, sealed)
        s.rollback()
    assert not res.ok
    words = {"event_data": "altered", "event_removed": "removed", "audit": "audit log",
             "row_edit": "altered", "row_removed": "changed"}
    assert any(words[tamper] in p for p in res.problems), res.problems
