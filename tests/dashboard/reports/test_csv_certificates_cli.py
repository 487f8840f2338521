"""Excel-safe CSV and XLSX, deletion certificates generated from the records that prove them
(a deletion in the number system's log, a purge of the backups, a wiped medium; never a
number; listed in the next monthly report), and the CLI (`numlog import`, `report client`,
`report monthly`, `report download`, `report verify` catching a tampered database,
`report supersede`, `report certificate`)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dashboard import cli as dashboard_cli
from dashboard.models.audit import AuditRecord
from dashboard.models.events import StoredEvent
from dashboard.models.media import Medium, MediumRecord
from dashboard.models.people import Person
from dashboard.models.reports import Client, ClientOffice
from dashboard.numlog.service import import_csv
from dashboard.reports.certificates import candidates, issue_certificate, parse_certificate
from dashboard.reports.data import ReportError
from dashboard.reports.monthly import issue, stored_file
from dashboard.reports.verify import verify_file
from tests.dashboard.reports.test_monthly import pdf_text

ZONE = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 2, tzinfo=UTC)
HOSTILE = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
ORG = "株式会社 セルズ"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    dashboard_cli.add_subcommands(p.add_subparsers(dest="cmd", required=True))
    return p


def _run(*argv: str) -> int:
    args = _parser().parse_args(list(argv))
    return int(args.func(args))


def _client(s: Session, name: str = ORG) -> int:
    s.add(Client(id=1, name=name, created_at=NOW))
    s.add(ClientOffice(office=name, client_id=1))
    s.flush()
    return 1


def test_report_csv_and_xlsx_neutralise_formulas(db: sessionmaker[Session]) -> None:
    from openpyxl import load_workbook

    lines = ["NO,事業所名,日時,画面,処理,利用目的,処理者,結果"]
    for i, h in enumerate(HOSTILE, start=1):
        cell = '"' + h.replace('"', '""') + '"'
        lines.append(f"{i},{ORG},2026/10/5 10:0{i},画面,{cell},{cell},op{i},成功")
    with db() as s:
        cid = _client(s)
        r = import_csv(s, ("\r\n".join(lines) + "\r\n").encode("utf-8"), source="x", now=NOW,
                       zone=ZONE)
        assert r.stored == len(HOSTILE), r.errors
        out = issue(s, month="2026-10", client_id=cid, lang="en", zone=ZONE, now=NOW)
    text = out.files["csv"].decode("utf-8-sig")
    cells = [c for row in csv.reader(io.StringIO(text, newline="")) for c in row]
    stripped = {h.strip() for h in HOSTILE}
    for c in cells:
        assert not c.startswith(("=", "+", "-", "@", "\t", "\r")), c
    assert sum(1 for c in cells if c.startswith("'") and c[1:].strip() in stripped) >= 2 * 4
    wb = load_workbook(io.BytesIO(out.files["xlsx"]))
    values = [c for ws in wb for row in ws.iter_rows() for c in row if c.value]
    assert values and all(c.data_type != "f" for c in values)
    assert any(c.value == HOSTILE[0] for c in values)  # kept as text, not as a formula


def _deletion_records(s: Session) -> None:
    """A deletion in the number system's log, a purge of the backups, a wiped medium."""
    s.add(Person(id="p1", name="井上 通", operator_ids=["op1"], cups_users=[], created_at=NOW))
    s.add(Person(id="p2", name="佐藤 花子", operator_ids=[], cups_users=[], created_at=NOW))
    s.flush()
    log = ("NO,事業所名,日時,画面,処理,利用目的,処理者,結果\r\n"
           f"7,{ORG},2026/10/30 10:00,個人情報,マイナンバー削除,保存期間満了,op1,削除完了\r\n")
    import_csv(s, log.encode("utf-8"), source="cells", now=NOW, zone=ZONE)
    s.add(StoredEvent(node="backup1", seq=5, kind="backup.pruned",
                      ts=datetime(2026, 10, 30, 9, 40, tzinfo=UTC), received_at=NOW, boot="b",
                      clock="synced", data={"mode": "purge", "result": "ok", "duration_s": 1.0,
                                            "snapshots_changed": ["a->b", "c->d"]},
                      prev="0" * 64, hash="1" * 64, sig="s"))
    s.add(Medium(control_number="USB-0009", vendor_id="0781", product_id="5567",
                 token_digest="0" * 64, media_type="USB", make="m", model="m", state="in_storage",
                 custodian="p2", registered_at=NOW, registered_by="a", updated_at=NOW))
    s.flush()
    s.add(MediumRecord(control_number="USB-0009", action="wipe", to_state="in_storage",
                       actor="p2", at=datetime(2026, 10, 29, 1, 0, tzinfo=UTC), method="Purge",
                       details={}))
    s.flush()


def test_certificates_from_the_records_that_prove_them(db: sessionmaker[Session],
                                                       tmp_path: Path) -> None:
    with db() as s:
        cid = _client(s)
        _deletion_records(s)
        got = {b.kind: b for b in candidates(s, ZONE, NOW)}
        assert set(got) == {"numlog", "backup_purge", "media"}
        assert got["numlog"].client_id == cid and got["numlog"].person_id == "p1"
        issued = {}
        for kind, b in got.items():
            data = parse_certificate({
                "kind": kind, "ref": b.ref, "client_id": cid, "person_id": "p1",
                "reason": "退職後の保存期間満了", "subject": "元従業員 山田 太郎", "lang": "ja"})
            issued[kind] = issue_certificate(s, data, zone=ZONE, now=NOW, actor="admin1")
        assert not candidates(s, ZONE, NOW)  # each record is certified once
        with pytest.raises(ReportError, match="issued already"):
            issue_certificate(s, data, zone=ZONE, now=NOW, actor="admin1")
        with pytest.raises(ReportError) as err:
            parse_certificate({**data.model_dump(), "subject": "番号 1234 5678 9018 を削除"})
        assert "9018" not in str(err.value) and "subject" in str(err.value)
        assert s.query(AuditRecord).filter(
            AuditRecord.action == "certificate.issue").count() == 3
        row, files = issued["backup_purge"]
        assert stored_file(s, fmt="pdf", certificate_id=row.id) == files["pdf"]
        assert verify_file(s, files["pdf"]).document == f"certificate {row.number}"
        # listed in the monthly report of the month it was issued in
        report = issue(s, month="2026-11", client_id=cid, lang="ja", zone=ZONE, now=NOW)
        assert sorted(d.number for d in report.data.deletions) == sorted(
            c.number for c, _ in issued.values())
    t = pdf_text(files["pdf"], tmp_path)
    for word in (f"{ORG} 御中", "削除証明書", "以下のとおり特定個人情報を削除したことを証明",
                 "処理年月日 令和8年10月30日", "担当者 井上 通", "理由 退職後の保存期間満了",
                 "対象者 元従業員 山田 太郎", "結果 削除完了(2 世代から消去)",
                 "方法 データ削除(バックアップ全世代からの消去)", "印"):
        assert word in t, word
    assert "backup1" not in t and "p1" not in t
    media = pdf_text(issued["media"][1]["pdf"], tmp_path)
    assert "暗号消去" in media and "USB-0009" in media and "消去完了" in media


def test_cli_client_import_report_download_verify_supersede(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dashboard.db import Base, make_engine

    url = f"sqlite:///{tmp_path / 'd.sqlite3'}"
    eng = make_engine(url)
    Base.metadata.create_all(eng)
    eng.dispose()
    log = tmp_path / "cells.csv"
    log.write_bytes(("NO,事業所名,日時,画面,処理,利用目的,処理者,結果\r\n"
                     f"1,{ORG},2026/10/5 10:00,個人情報,マイナンバー閲覧,年末調整,op1,閲覧\r\n"
                     f"2,{ORG},2026/10/5 99:00,個人情報,マイナンバー閲覧,年末調整,op1,閲覧\r\n"
                     ).encode("cp932"))
    db = ("--database-url", url)
    assert _run("numlog", "import", str(log), "--source", "cells", *db) == 0
    out = capsys.readouterr().out
    assert "1 stored" in out and "line 3: column ts" in out
    assert _run("report", "client", ORG, "--office", ORG, *db) == 0
    pdf = tmp_path / "r.pdf"
    assert _run("report", "monthly", "--month", "2026-10", "--client", ORG, "--out", str(pdf),
                *db) == 0
    number = capsys.readouterr().out.split("report ")[-1].split(",")[0]
    again = tmp_path / "again.xlsx"
    assert _run("report", "download", number, "--out", str(again), *db) == 0
    assert again.read_bytes().startswith(b"PK")
    assert _run("report", "verify", str(pdf), *db) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["ok"] is True
    con = sqlite3.connect(tmp_path / "d.sqlite3")
    con.execute("UPDATE number_access SET purpose = 'x'")
    con.commit()
    con.close()
    assert _run("report", "verify", str(pdf), *db) == 1
    fixed = tmp_path / "fixed.csv"
    assert _run("report", "supersede", number, "--reason", "利用目的の訂正", "--out", str(fixed),
                *db) == 0
    assert "利用目的の訂正" in fixed.read_bytes().decode("utf-8-sig")
    assert _run("report", "verify", str(pdf), *db) == 1
    assert "superseded by report" in capsys.readouterr().out
    assert _run("report", "monthly", "--month", "2026-13", "--all", "--out",
                str(tmp_path / "x.pdf"), *db) == 2
    assert "month must look like" in capsys.readouterr().err
    assert _run("report", "monthly", "--month", "2026-10", "--client", "no such", "--out",
                str(tmp_path / "x.pdf"), *db) == 2
