"""The monthly handling report of a realistic month (SQLite, and PostgreSQL when configured),
read back as a client reads it: the PDF's text (pdftotext) in Japanese and English, the XLSX in
openpyxl; kept as issued (downloaded again byte for byte, an altered stored file refused),
verified (a tampered database is caught), superseded with a stated reason."""

from __future__ import annotations

import io
import re
import subprocess
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from dashboard.models.audit import AuditRecord
from dashboard.models.auth import User
from dashboard.models.events import StoredEvent
from dashboard.models.numlog import NumberAccess
from dashboard.models.people import Door, Printer
from dashboard.models.reports import IssuedFile
from dashboard.numlog.classify import classify
from dashboard.reports.clients import ClientIn, OfficeIn, map_office, save_client, save_office
from dashboard.reports.data import ReportError
from dashboard.reports.monthly import Issued, issue, stored_file
from dashboard.reports.verify import verify_file
from tests.dashboard.correlation import world as W
from tests.dashboard.correlation.conftest import Month
from tests.dashboard.reports.test_properties import numbers_in
from tests.support import require_binary

LATER = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
OFFICE = {"name": "テスト社会保険労務士事務所", "address": "東京都新宿区西新宿2-8-1",
          "phone": "03-1111-2222", "representative": "社会保険労務士 山本 恵"}
NODES = ("gw1", "usbagent", "bk1", "lab1")


def pdf_pages(pdf: bytes, tmp: Path) -> list[str]:
    """The PDF's text, one string per page (whitespace collapsed)."""
    require_binary("pdftotext")
    path = tmp / "r.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                         check=True, timeout=120)
    return [" ".join(p.split()) for p in out.stdout.decode("utf-8").split("\f") if p.strip()]


def pdf_text(pdf: bytes, tmp: Path) -> str:
    return " ".join(pdf_pages(pdf, tmp))


@pytest.fixture(scope="module")
def client_id(month: Month) -> int:
    """The office as a real one is set up: its profile, the door and printer named, the
    admin with a display name, and the client its month of rows belongs to."""
    with month.sm() as s:
        save_office(s, OfficeIn(**OFFICE), actor="setup", now=W.NOW)
        cid = save_client(s, ClientIn(name=W.ORG, address="愛知県小牧市"), actor="setup",
                          now=W.NOW).id
        save_client(s, ClientIn(name="株式会社 ほかの会社"), actor="setup", now=W.NOW)
        map_office(s, W.ORG, cid, actor="setup", now=W.NOW)
        s.add(Door(id="room", name="管理区域入口"))
        s.add(Printer(id="room-printer", name="室内プリンター"))
        s.add(User(username="admin1", display_name="管理者 一郎", password_hash="-",  # noqa: S106
                   role="admin", active=True, created_at=W.NOW))
        s.commit()
    return cid


def _issue(month: Month, cid: int | None, lang: str) -> Issued:
    with month.sm() as s:
        out = issue(s, month="2026-10", client_id=cid, lang=lang, zone=W.ZONE, now=LATER,
                    actor="admin1")
        s.commit()
    return out


@pytest.fixture(scope="module")
def ja(month: Month, client_id: int) -> Issued:
    return _issue(month, client_id, "ja")


@pytest.fixture(scope="module")
def en(month: Month, client_id: int) -> Issued:
    return _issue(month, client_id, "en")


def counts(m: Month) -> tuple[int, int, int, int]:
    cats = [classify(r[4], r[7]) for r in m.world.rows]
    uses = [ok for cat, ok in cats if cat != "login"]
    logins = [ok for cat, ok in cats if cat == "login"]
    return len(uses), uses.count(False), len(logins), logins.count(False)


def test_japanese_pdf_is_a_letter_a_client_can_be_handed(month: Month, ja: Issued,
                                                         tmp_path: Path) -> None:
    pages = pdf_pages(ja.content, tmp_path)
    t = " ".join(pages)
    # addressee, issuer with its seal box, issue date in the era, the letter's shape
    assert t.startswith(f"第 {ja.number} 号 令和8年11月2日 {W.ORG} 御中")
    for line in (f"所在地 {OFFICE['address']}", f"電話番号 {OFFICE['phone']}",
                 f"名称 {OFFICE['name']}", f"代表者 {OFFICE['representative']}", "印",
                 "特定個人情報の取扱い状況について", "令和8年10月1日〜令和8年10月31日", "拝啓",
                 "敬具", "記", "以上", "日時はすべて日本時間で記載しています。"):
        assert line in pages[0] + pages[1], line
    # the four kinds of measures, sections 2 to 4
    for kind in ("組織的安全管理措置", "人的安全管理措置", "物理的安全管理措置",
                 "技術的安全管理措置", "2. 特定個人情報の利用、持出し、廃棄・削除の記録",
                 "3. 特定個人情報の再委託の有無", "4. 情報漏えいの発生の有無"):
        assert kind in t, kind
    # log-ins are not uses: each counted apart, each equal to what its annex lists
    uses, failed, logins, failed_logins = counts(month)
    assert f"個人番号の利用 {uses} 件(うち失敗・拒否 {failed} 件)" in t
    assert f"番号システムへのログイン {logins} 件(うち失敗 {failed_logins} 件)" in t
    assert logins > 0 and len(ja.data.uses) == uses and len(ja.data.logins) == logins
    # the annex with the seed's columns, Japanese dates, page numbers
    assert "別紙1 個人番号関係事務処理一覧 NO 事業所名 日時 画面 処理 利用目的 処理者 結果" in t
    assert re.search(r"2026年10月\d{1,2}日 \d{2}:\d{2}", t)
    assert not re.search(r"\d{4}-\d{2}-\d{2}", t), "an ISO date"
    assert pages[0].endswith(f"1 / {len(pages)} 頁") and pages[-1].endswith(
        f"{len(pages)} / {len(pages)} 頁")
    # the integrity annex is last; hashes and the command only there
    integrity = next(i for i, p in enumerate(pages) if "別紙10 記録の完全性" in p)
    body = " ".join(pages[:integrity])
    assert "secroom report verify" in " ".join(pages[integrity:])
    assert "secroom" not in body and not re.search(r"[0-9a-f]{8}:[0-9a-f]{8}", body)
    # names, not ids: people, operators, door, printer, site, nodes, the acknowledging admin
    assert "職員01" in body and "管理区域入口" in body and "管理者 一郎" in body
    for raw in (r"\bP\d{2}\b", r"op-P\d{2}", r"\broom\b", "room-printer", "site1", "admin1",
                *(rf"\b{n}\b" for n in NODES)):
        assert not re.search(raw, body), raw
    # no English word in the Japanese body (the seed's "NO" column, control numbers and the
    # number system's own wording of its actions, "CSV出力", aside)
    words = set(re.findall(r"[A-Za-z]{3,}", body)) - {"USB", "CSV"}
    assert not words, words
    # no individual number in any digit form
    assert not numbers_in(t) and "9018" not in unicodedata.normalize("NFKC", t)


def test_english_pdf(en: Issued, tmp_path: Path) -> None:
    t = pdf_text(en.content, tmp_path)
    for line in (f"To: {W.ORG}", "Organisational measures", "Human measures", "Physical measures",
                 "Technical measures", "1 October 2026 – 31 October 2026",
                 "Annex 1: Number-related work No. Office Time Screen Action Purpose Operator "
                 "Result", "Whether any leak occurred", "page 1 of"):
        assert line in t, line
    assert re.search(r"\b\d{1,2} Oct 2026 \d{2}:\d{2}\b", t)


def test_internal_report_lists_every_client(month: Month, client_id: int,
                                            tmp_path: Path) -> None:
    out = _issue(month, None, "ja")
    t = pdf_pages(out.content, tmp_path)[0]
    assert t.startswith(f"第 {out.number} 号 令和8年11月2日 社内用(全委託元)")
    assert "御中" not in t
    assert len(out.data.uses) + len(out.data.logins) == len(month.world.rows)


def test_xlsx_is_the_same_report(ja: Issued) -> None:
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(ja.files["xlsx"]), read_only=True)
    assert wb.sheetnames[:2] == ["報告書", "別紙1"] and wb.sheetnames[-1] == "別紙10"
    rows = list(wb["別紙1"].iter_rows(values_only=True))
    assert rows[1] == ("NO", "事業所名", "日時", "画面", "処理", "利用目的", "処理者", "結果")
    assert len(rows) - 2 == len(ja.data.uses)
    assert any(p.name == "secroom-seal" for p in wb.custom_doc_props.props)


def test_download_again_as_issued(month: Month, ja: Issued) -> None:
    with month.sm() as s:
        for fmt in ("pdf", "csv", "xlsx"):
            assert stored_file(s, fmt=fmt, report_id=ja.record_id) == ja.files[fmt]
        s.execute(update(IssuedFile).where(IssuedFile.report_id == ja.record_id,
                                           IssuedFile.fmt == "pdf")
                  .values(content=ja.files["pdf"] + b"%"))
        with pytest.raises(ReportError, match="altered"):
            stored_file(s, fmt="pdf", report_id=ja.record_id)
        s.rollback()


def test_verify_then_supersede_with_a_reason(month: Month, client_id: int,
                                             tmp_path: Path) -> None:
    first = _issue(month, client_id, "ja")
    with month.sm() as s:
        res = verify_file(s, first.files["xlsx"])
        assert res.ok and res.document == f"report {first.number}", res.problems
        assert res.checked_rows == len(month.world.rows)
        assert not verify_file(s, first.files["pdf"][:-10] + b"x" * 10).ok
        second = issue(s, month="2026-10", client_id=client_id, lang="ja", zone=W.ZONE,
                       now=LATER, actor="admin1", supersedes=first.record_id,
                       reason="入退室記録の取込漏れ(10月21日分)を反映")
        s.commit()
        old = verify_file(s, first.files["pdf"])
        assert not old.ok and old.superseded_by == second.number
        assert any("入退室記録の取込漏れ" in p for p in old.problems)
        assert verify_file(s, second.files["csv"]).ok
        with pytest.raises(ReportError, match="superseded already"):
            issue(s, month="2026-10", client_id=client_id, lang="ja", zone=W.ZONE, now=LATER,
                  supersedes=first.record_id, reason="again")
        actions = s.scalars(select(AuditRecord.action).where(
            AuditRecord.target_id == str(second.record_id))).all()
        assert "report.supersede" in actions
    t = "".join(pdf_text(second.content, tmp_path).split())  # the sentence wraps
    assert f"第{first.number}号を次の理由により訂正し、差し替えるものです。" in t
    assert "理由:入退室記録の取込漏れ(10月21日分)を反映" in t


@pytest.fixture(scope="module")
def sealed(month: Month, ja: Issued) -> Iterator[bytes]:
    with month.sm() as s:
        res = verify_file(s, ja.content)
    assert res.ok and res.checked_rows == len(month.world.rows) and res.checked_events > 2000
    yield ja.content


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


def test_the_room_pcs_are_a_section_of_their_own(month: Month, client_id: int,
                                                 ja: Issued, tmp_path: Path) -> None:
    """System usage (record 5): log-ons at the room's PCs and operations on the number data
    folders, from the host agents' records. A client's report lists those of the staff who
    handled that client's numbers; the internal report every one; the body's figure is the
    annex's own count, and PCs are named."""
    with month.sm() as s:
        hosts = s.scalars(select(StoredEvent).where(StoredEvent.kind == "host.logon")).all()
    mine, every = ja.data.pcs, _issue(month, None, "ja").data.pcs
    assert hosts and len(every) >= len(mine) > 0
    handlers = set(ja.data.handlers)
    assert {r.person for r in mine} <= handlers
    pages = pdf_pages(ja.content, tmp_path)
    body = " ".join(pages)
    annex = next(p for p in pages if "別紙9 管理区域内のパソコンの利用" in p)
    logons = sum(1 for r in mine if r.what == "logon")
    denied = sum(1 for r in mine if r.what == "logon" and not r.ok)
    ops = sum(1 for r in mine if r.what == "file_op")
    figure = (f"管理区域内のパソコンへのログオン {logons} 件(うち拒否 {denied} 件)、"
              f"個人番号データの操作 {ops} 件、別紙9")
    assert figure in ja.files["csv"].decode("utf-8-sig")  # the body, as the CSV states it
    assert "別紙9 管理区域内のパソコンの利用" in body
    assert "事務室パソコン" in annex and "pc-" not in annex
