from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from usb_guard import ledger
from usb_guard.csv_export import certificate_csv, excel_bytes, ledger_csv, safe_cell
from usb_guard.policy import MediumIdentity

from .conftest import NOW
from .test_certificate import certificate


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("dangerous", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x", "\r=x",
                                       "＝HYPERLINK(\"http://x\")"])
def test_formula_cells_are_neutralised(dangerous: str) -> None:
    assert safe_cell(dangerous) == "'" + dangerous
    assert safe_cell("USB-0001") == "USB-0001"
    assert safe_cell(None) == ""


def test_certificate_csv_in_both_languages() -> None:
    cert = certificate(notes='=HYPERLINK("http://evil","x")')
    ja = parse(certificate_csv(cert, "ja"))
    en = parse(certificate_csv(cert, "en"))
    assert ja[0] == ["項目", "内容"] and en[0] == ["Field", "Value"]
    ja_map, en_map = dict(ja[1:]), dict(en[1:])
    assert ja_map["媒体情報 / 管理番号"] == "USB-0007"
    assert en_map["Sanitization details / Method type"] == "Purge"
    assert en_map["Sanitization details / Notes"].startswith("'=HYPERLINK")
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in en for cell in row)


def test_ledger_csv_lists_every_medium_with_its_state() -> None:
    m = ledger.register("USB-0001", MediumIdentity(vendor_id="0781", product_id="5583",
                                                   serial="-1+1"), "ab" * 32,
                        make="=cmd|' /C calc'!A0", model="Cruzer", custodian="佐藤",
                        actor="a", now=NOW, hosts=["pc1", "pc2"]).medium
    m = ledger.store(m, actor="a", now=NOW).medium
    out = ledger.check_out(m, holder="田中", purpose="提出", due_back=NOW + timedelta(days=1),
                           requested_by="田中", approved_by="鈴木", now=NOW).medium
    rows = parse(ledger_csv([out], "ja"))
    header, row = rows[0], rows[1]
    record = dict(zip(header, row, strict=True))
    assert record["管理番号"] == "USB-0001" and record["状態"] == "持出中"
    assert record["持出者"] == "田中" and record["承認者"] == "鈴木"
    assert record["メーカー"] == "'=cmd|' /C calc'!A0"
    assert record["シリアル番号"] == "'-1+1"
    assert record["使用可能端末"] == "pc1 pc2"
    assert parse(ledger_csv([out], "en"))[1][1] == "Checked out"
    assert excel_bytes("a").startswith(b"\xef\xbb\xbf")
