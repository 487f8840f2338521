"""CSV import: encodings, presets and mappings, bad rows with line numbers, idempotency,
redaction before storage (nothing in the database file or the anomalies), the drop folder."""

from __future__ import annotations

import json
import threading
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.models.anomalies import Anomaly
from dashboard.models.audit import AuditRecord
from dashboard.models.numlog import NumberAccess, NumlogBatch
from dashboard.models.people import Person
from dashboard.numlog.parse import ColumnMapping, NumlogError, detect_encoding
from dashboard.numlog.service import import_csv, import_json
from dashboard.numlog.watch import DropFolder

ZONE = ZoneInfo("Asia/Tokyo")
NOW = datetime(2015, 9, 1, tzinfo=UTC)
NUMBER = "123456789018"
SEED = """NO,事業所名,日時,画面,処理,利用目的,処理者,結果
213,株式会社 セルズ,2015/8/6 10:30,一覧入力,ログイン認証,,井上 通,成功
242,株式会社 セルズ,2015/8/10 9:36,個人情報,マイナンバー閲覧,,井上 通,閲覧
247,株式会社 セルズ,2015/8/10 9:58,個人情報,マイナンバー更新,,井上 通,更新完了
248,株式会社 セルズ,2015/8/10 10:03,個人情報,ログイン認証,,井上 通,成功
248,株式会社 セルズ,2015/8/10 10:03,個人情報,マイナンバー閲覧,,井上 通,閲覧
"""


def _imp(sm: sessionmaker[Session], data: bytes, **kw: object):  # type: ignore[no-untyped-def]
    with sm() as s:
        r = import_csv(s, data, source=kw.pop("source", "cells"), now=NOW, zone=ZONE,  # type: ignore[arg-type]
                       filename="log.csv", **kw)  # type: ignore[arg-type]
        s.commit()
    return r


def _person(sm: sessionmaker[Session]) -> None:
    with sm() as s:
        s.add(Person(id="inoue", name="井上 通", operator_ids=["井上 通"], cups_users=[],
                     created_at=NOW))
        s.commit()


@pytest.mark.parametrize(("encoding", "detected"), [
    ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp932", "cp932")])
def test_encodings_are_detected_and_the_seed_table_imports(
        db: sessionmaker[Session], encoding: str, detected: str) -> None:
    _person(db)
    r = _imp(db, SEED.encode(encoding))
    assert (r.encoding, r.preset, r.stored, r.bad) == (detected, "ja-standard", 5, 0)
    with db() as s:
        rows = s.scalars(select(NumberAccess).order_by(NumberAccess.line)).all()
        assert [r.no for r in rows] == ["213", "242", "247", "248", "248"]  # NO 248 twice
        assert rows[1].operator == "井上 通" and rows[1].person_id == "inoue"
        assert rows[1].ts == datetime(2015, 8, 10, 0, 36, tzinfo=UTC)  # 9:36 JST
        assert [r.category for r in rows][:2] == ["login", "access"]


def test_undecodable_bytes_are_refused_with_a_clear_error() -> None:
    with pytest.raises(NumlogError, match="neither UTF-8 nor CP932"):
        detect_encoding(b"NO,\x81\x20\xff\xfe")


def test_reimport_stores_nothing_twice(db: sessionmaker[Session]) -> None:
    first = _imp(db, SEED.encode("cp932"))
    again = _imp(db, SEED.encode("utf-8-sig"))  # same rows, other encoding
    more = SEED + "251,株式会社 セルズ,2015/8/10 10:46,個人情報,マイナンバー閲覧,,井上 通,閲覧\n"
    third = _imp(db, more.encode("utf-8"))
    assert (first.stored, again.stored, again.duplicate) == (5, 0, 5)
    assert (third.stored, third.duplicate) == (1, 5)
    with db() as s:
        assert s.query(NumberAccess).count() == 6
        assert s.query(NumlogBatch).count() == 3
        assert s.query(AuditRecord).filter(AuditRecord.action == "numlog.import").count() == 3


def test_bad_rows_are_reported_with_line_numbers_and_good_rows_kept(
        db: sessionmaker[Session]) -> None:
    text = (SEED
            + "300,株式会社 セルズ,2015/13/40 9:00,個人情報,マイナンバー閲覧,,井上 通,閲覧\n"
            + "301,株式会社 セルズ,2015/8/11 9:00,個人情報,マイナンバー閲覧,,,閲覧\n"
            + "302,株式会社 セルズ,2015/8/11 9:00,個人情報,閲覧,,井上 通,閲覧,extra,cols\n"
            + "303,株式会社 セルズ,2015/8/11 9:05,個人情報,マイナンバー閲覧,,井上 通,閲覧\n")
    r = _imp(db, text.encode("cp932"))
    assert r.stored == 6 and r.bad == 3
    assert [(e["line"], e["error"].split(":")[0]) for e in r.errors] == [
        (7, "column ts"), (8, "column operator is empty"), (9, "10 columns but the header has 8")]


def test_a_mapping_reads_other_layouts(db: sessionmaker[Session]) -> None:
    text = "when;who;what;why;pc\n2015-08-10 09:36:00;井上 通;マイナンバー閲覧;年末調整;T1\n"
    text = text.replace(";", "\t")
    with pytest.raises(NumlogError, match="give a column mapping"):
        _imp(db, text.encode("utf-8"))
    m = ColumnMapping(ts="when", operator="who", action="what", purpose="why", terminal="pc")
    r = _imp(db, text.encode("utf-8"), mapping=m)
    assert (r.stored, r.preset) == (1, "custom")
    with db() as s:
        row = s.scalars(select(NumberAccess)).one()
        assert (row.purpose, row.terminal, row.host) == ("年末調整", "T1", "T1")


def test_a_number_in_any_field_is_redacted_before_storage(
        db: sessionmaker[Session], tmp_path: Path) -> None:
    shapes = [NUMBER, "1234-5678-9018", "１２３４ ５６７８ ９０１８", "1234ー5678ー9018"]
    lines = [f"{i},株式会社 セルズ,2015/8/10 9:{i:02d},個人情報,マイナンバー閲覧,{shape},井上 通,閲覧"  # noqa: E501
             for i, shape in enumerate(shapes, start=1)]
    lines.append(f"9,{NUMBER},2015/8/10 9:30,画面{NUMBER},処理,,井上 通,結果")
    lines.append(f"10,株式会社 セルズ,{NUMBER},個人情報,閲覧,,井上 通,閲覧")  # bad row too
    r = _imp(db, ("\n".join([SEED.splitlines()[0], *lines]) + "\n").encode("cp932"))
    assert r.stored == 5 and r.bad == 1 and r.redacted == 6
    with db() as s:
        rows = s.scalars(select(NumberAccess).order_by(NumberAccess.line)).all()
        assert all("[個人番号削除]" in (r.purpose + r.office) for r in rows)
        assert rows[-1].redacted_fields == ["office", "screen"]
        anomalies = s.scalars(select(Anomaly)).all()
        texts = json.dumps([[a.subject, a.detail] for a in anomalies], ensure_ascii=False)
        assert "line 6" in texts and "line 7" in texts and "(row rejected)" in texts
    blob = b"".join(p.read_bytes() for p in tmp_path.rglob("*.sqlite3*"))
    for digits in (NUMBER, "1234-5678-9018", "9018"):
        assert digits.encode() not in blob
    assert "１２３４".encode() not in blob and "５６７８".encode() not in blob
    assert NUMBER not in texts and "9018" not in texts


def test_json_rows_over_the_api_path(db: sessionmaker[Session]) -> None:
    rows = [{"no": "1", "ts": "2015-08-10T09:36:00+09:00", "action": "マイナンバー閲覧",
             "operator": "井上 通", "purpose": f"x{NUMBER}"},
            {"no": "2", "ts": "2015-08-10T09:37:00+09:00", "action": "閲覧", "operator": "井上 通",
             "bogus": NUMBER}]
    with db() as s:
        r = import_json(s, rows, source="api", now=NOW, zone=ZONE, actor="token:numlog")
        s.commit()
    assert (r.stored, r.bad) == (1, 1)
    assert r.errors[0]["line"] == 2 and "bogus" in r.errors[0]["error"]
    assert NUMBER not in json.dumps(r.as_dict())


def test_drop_folder_imports_settled_files_and_moves_them(
        db: sessionmaker[Session], tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    clock = [NOW]
    folder = DropFolder(drop, "cells", db, ZONE, clock=lambda: clock[0], settle_s=2)
    (drop / "a.csv").write_bytes(SEED.encode("cp932"))
    (drop / "b.csv").write_bytes(b"\xff\xfe\x00garbage\x81")
    (drop / "c.csv.part").write_bytes(b"still copying")
    assert folder.scan_once() == []  # first sight: not settled yet
    clock[0] = NOW.replace(second=3)
    done = folder.scan_once()
    assert sorted(d["status"] for d in done) == ["done", "failed"]
    assert (drop / "done" / "a.csv").exists() and (drop / "failed" / "b.csv").exists()
    assert (drop / "c.csv.part").exists()
    result = json.loads((drop / "done" / "a.csv.result.json").read_text(encoding="utf-8"))
    assert result["stored"] == 5
    (drop / "a.csv").write_bytes(SEED.encode("cp932"))  # the same file dropped again
    stop = threading.Event()
    folder.settle_s = 0
    t = threading.Thread(target=folder.run, args=(stop, 0.01))
    t.start()
    try:
        deadline = datetime.now(UTC).timestamp() + 10
        while not (drop / "done" / "a.1.csv").exists() and datetime.now(UTC).timestamp() < deadline:
            stop.wait(0.01)
    finally:
        stop.set()
        t.join()
    again = json.loads((drop / "done" / "a.1.csv.result.json").read_text(encoding="utf-8"))
    assert (again["stored"], again["duplicate"]) == (0, 5)


def test_numbers_only_nfkc_reveals_are_redacted_and_near_misses_kept(
        db: sessionmaker[Session], tmp_path: Path) -> None:
    """Circled and superscript digits, mixtures, and separators only NFKC turns into ASCII
    (U+FE63 small hyphen, U+2002 en space) were stored as 402123456786 once normalised."""
    number = "402123456786"
    shapes = ["40212345678⑥", "4021\ufe632345\ufe636786", "4021\u20022345\u20026786",
              "④⓪②①②③④⑤⑥⑦⑧⑥", "4021234567⁸⁶"]
    lines = [f"{i},株式会社 セルズ,2015/8/10 9:{i:02d},個人情報,マイナンバー閲覧,{shape},井上 通,閲覧"  # noqa: E501
             for i, shape in enumerate(shapes, start=1)]
    lines.append("9,株式会社 セルズ,2015/8/10 9:30,個人情報,閲覧,40212345678⑦,井上 通,閲覧")
    r = _imp(db, ("\n".join([SEED.splitlines()[0], *lines]) + "\n").encode("utf-8"))
    with db() as s:
        rows = s.scalars(select(NumberAccess).order_by(NumberAccess.line)).all()
        stored = [(row.purpose, row.redacted_fields) for row in rows]
        texts = json.dumps([[a.subject, a.detail] for a in s.scalars(select(Anomaly))],
                           ensure_ascii=False)
    blob = b"".join(p.read_bytes() for p in tmp_path.rglob("*.sqlite3*"))
    digits = "".join(c for c in unicodedata.normalize("NFKC", blob.decode("utf-8", "replace"))
                     if c.isdigit())
    assert number not in digits and number not in texts
    # the near-miss is kept (NFKC-normalised, as every stored field is)
    assert stored == [("[個人番号削除]", ["purpose"])] * 5 + [("402123456787", [])]
    assert (r.stored, r.redacted) == (6, 5)
