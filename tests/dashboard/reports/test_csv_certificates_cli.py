"""CSV formula injection, deletion certificates (no number), and the CLI (`numlog import`,
`report monthly`, `report verify` catching a tampered database)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dashboard import cli as dashboard_cli
from dashboard.models.audit import AuditRecord
from dashboard.reports.certificates import (
    CertificateError,
    certificate_csv,
    certificate_pdf,
    parse_certificate,
    record,
)
from dashboard.reports.monthly import issue
from tests.dashboard.reports.test_monthly import pdf_text

ZONE_NAME = "Asia/Tokyo"
NOW = datetime(2026, 11, 2, tzinfo=UTC)
HOSTILE = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    dashboard_cli.add_subcommands(p.add_subparsers(dest="cmd", required=True))
    return p


def _run(*argv: str) -> int:
    args = _parser().parse_args(list(argv))
    return int(args.func(args))


def test_report_csv_neutralises_formulas(db: sessionmaker[Session]) -> None:
    from zoneinfo import ZoneInfo

    from dashboard.numlog.service import import_csv

    lines = ["NO,事業所名,日時,画面,処理,利用目的,処理者,結果"]
    for i, h in enumerate(HOSTILE, start=1):
        cell = '"' + h.replace('"', '""') + '"'
        lines.append(f"{i},org,2026/10/5 10:0{i},画面,{cell},{cell},op{i},成功")
    zone = ZoneInfo(ZONE_NAME)
    with db() as s:
        r = import_csv(s, ("\r\n".join(lines) + "\r\n").encode("utf-8"), source="x", now=NOW,
                       zone=zone)
        assert r.stored == len(HOSTILE), r.errors
        out = issue(s, month="2026-10", org="org", lang="en", fmt="csv", zone=zone, now=NOW)
    text = out.content.decode("utf-8-sig")
    cells = [c for row in csv.reader(io.StringIO(text, newline="")) for c in row]
    stripped = {h.strip() for h in HOSTILE}
    for c in cells:
        assert not c.startswith(("=", "+", "-", "@", "\t", "\r")), c
    assert sum(1 for c in cells if c.startswith("'") and c[1:].strip() in stripped) >= 2 * 4


def test_certificate_has_the_fields_and_never_a_number(db: sessionmaker[Session],
                                                      tmp_path: Path) -> None:
    data = {"number": "DEL-2026-001", "org": "株式会社 セルズ", "processed_on": "2026-10-30",
            "person_in_charge": "井上 通", "reason": "退職後の保存期間満了",
            "subject": "従業員 山田太郎 の個人番号", "result": "削除完了",
            "method": "データ削除(復元不可能な方法)"}
    cert = parse_certificate(data)
    with db() as s:
        record(s, cert, actor="admin1", now=NOW)
        s.commit()
        assert s.query(AuditRecord).filter(AuditRecord.action == "certificate.issue").count() == 1
    t = pdf_text(certificate_pdf([cert], "ja"), tmp_path)
    for word in ("削除証明書", "株式会社 セルズ 御中", "2026-10-30", "井上 通", "退職後の保存期間満了",  # noqa: E501
                 "従業員 山田太郎 の個人番号", "削除完了", "処理年月日", "担当者", "理由", "対象者", "結果",  # noqa: E501
                 "方法"):
        assert word in t, word
    assert "Date processed" in pdf_text(certificate_pdf([cert], "en"), tmp_path)
    assert certificate_csv([cert], "ja").startswith(b"\xef\xbb\xbf")
    # a number typed into a field is replaced before the certificate is stored or printed
    typed = parse_certificate({**data, "subject": "番号 1234\u20025678\u20029018 を削除"})
    assert typed.subject == "番号 [個人番号削除] を削除"
    assert "9018" not in pdf_text(certificate_pdf([typed], "ja"), tmp_path)
    with pytest.raises(CertificateError) as err:  # other errors still name the field only
        parse_certificate({**data, "subject": ""})
    assert "subject" in str(err.value)
    assert cert.processed_on == date(2026, 10, 30)


def test_cli_import_report_and_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    from dashboard.db import Base, make_engine

    url = f"sqlite:///{tmp_path / 'd.sqlite3'}"
    eng = make_engine(url)
    Base.metadata.create_all(eng)
    eng.dispose()
    log = tmp_path / "cells.csv"
    log.write_bytes(("NO,事業所名,日時,画面,処理,利用目的,処理者,結果\r\n"
                     "1,org,2026/10/5 10:00,個人情報,マイナンバー閲覧,年末調整,op1,閲覧\r\n"
                     "2,org,2026/10/5 99:00,個人情報,マイナンバー閲覧,年末調整,op1,閲覧\r\n"
                     ).encode("cp932"))
    assert _run("numlog", "import", str(log), "--source", "cells", "--database-url", url) == 0
    out = capsys.readouterr().out
    assert "1 stored" in out and "line 3: column ts" in out
    pdf = tmp_path / "r.pdf"
    assert _run("report", "monthly", "--month", "2026-10", "--org", "org", "--out", str(pdf),
                "--database-url", url) == 0
    assert _run("report", "verify", str(pdf), "--database-url", url) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["ok"] is True
    con = sqlite3.connect(tmp_path / "d.sqlite3")
    con.execute("UPDATE number_access SET purpose = 'x'")
    con.commit()
    con.close()
    assert _run("report", "verify", str(pdf), "--database-url", url) == 1
    assert _run("report", "monthly", "--month", "2026-13", "--org", "", "--out",
                str(tmp_path / "x.pdf"), "--database-url", url) == 2
    assert "month must look like" in capsys.readouterr().err
