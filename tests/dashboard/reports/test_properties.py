"""Property: for any month of records for several clients, every count a report states equals
the rows it lists for it, each client's report lists only (and all of) that client's rows, and
no individual number appears, in any digit form.

Hypothesis generates the month: number-system rows (log-ins ok and failed, views, denials,
exports, deletions; offices of several clients and one nobody mapped; mapped and unknown
operators; purposes with a valid number typed in full-width or spaced digits), door accesses
(granted, denied, unknown cards) and print releases. The rows go through the real import
(parse, redaction, classification); the reports are rendered as CSV (the same document as the
PDF) and read back as a client would.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker
from stdnum.jp import in_ as my_number

from dashboard.db import Base, make_engine, make_sessionmaker
from dashboard.models.events import DoorAccess, StoredEvent
from dashboard.models.numlog import NumberAccess, NumlogBatch
from dashboard.models.people import Door, Person, Printer
from dashboard.models.reports import Client, ClientOffice
from dashboard.numlog.service import import_csv
from dashboard.reports.clients import measures_of, office_profile
from dashboard.reports.collect import gather
from dashboard.reports.document import Issue, build
from dashboard.reports.render import render_csv

ZONE = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
CLIENTS = ["株式会社さくら食品", "有限会社みどり運輸", "株式会社青空システム", "医療法人ひまわり会"]
UNMAPPED = "未登録事業所"
PEOPLE = [(f"p{i}", name, f"OP{i:04d}") for i, name in enumerate(
    ["佐藤 陽子", "鈴木 健一", "高橋 美咲", "田中 大輔", "伊藤 由美"], start=1)]
VALID = "123456789018"
NUMBER_FORMS = [VALID, "１２３４５６７８９０１８", "1234 5678 9018", "1234-5678-9018"]
# (処理, 結果, counted as a use, ok)
ACTIONS = [("ログイン認証", "成功", False, True), ("ログイン認証", "失敗", False, False),
           ("マイナンバー閲覧", "閲覧", True, True), ("マイナンバー閲覧", "拒否", True, False),
           ("CSV出力", "成功", True, True), ("マイナンバー削除", "削除完了", True, True)]
SEAL = {"v": 1, "nodes": {}, "audit": {"head_seq": 0, "head_hash": "0" * 64},
        "number_access": {"rows": 0, "digest": "0" * 64}}

row_st = st.tuples(
    st.integers(1, 30), st.integers(8 * 60, 20 * 60),  # day of November, minute of the day
    st.integers(0, len(PEOPLE)),  # a person (or, at len, an operator nobody maps)
    st.integers(0, len(CLIENTS)),  # a client's office (or, at len, an office nobody mapped)
    st.integers(0, len(ACTIONS) - 1),
    st.one_of(st.none(), st.sampled_from(NUMBER_FORMS)),  # a number typed into the purpose
)
door_st = st.tuples(st.integers(1, 30), st.integers(7 * 60, 21 * 60),
                    st.integers(-1, len(PEOPLE) - 1), st.sampled_from(["in", "out"]),
                    st.booleans())
print_st = st.tuples(st.integers(1, 30), st.integers(8 * 60, 21 * 60),
                     st.integers(0, len(PEOPLE) - 1), st.integers(1, 30))


def at(day: int, minute: int) -> datetime:
    return datetime.combine(date(2026, 11, day), time(minute // 60, minute % 60),
                            ZONE).astimezone(UTC)


@pytest.fixture(scope="module")
def sm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    path: Path = tmp_path_factory.mktemp("prop") / "p.sqlite3"
    eng = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(eng)
    maker = make_sessionmaker(eng)
    with maker() as s:
        for pid, name, op in PEOPLE:
            s.add(Person(id=pid, name=name, operator_ids=[op], cups_users=[], created_at=NOW))
        s.add(Door(id="room", name="管理区域入口"))
        s.add(Printer(id="prn", name="室内プリンター"))
        for i, name in enumerate(CLIENTS, start=1):
            s.add(Client(id=i, name=name, created_at=NOW))
            s.add(ClientOffice(office=name, client_id=i))
        s.commit()
    yield maker
    eng.dispose()


def _load(s: Session, rows: list[Any], doors: list[Any], prints: list[Any]
          ) -> dict[str, tuple[int | None, bool, bool]]:
    """Store the month; returns NO -> (client id, counted as a use, ok)."""
    for model in (NumberAccess, NumlogBatch, DoorAccess, StoredEvent):
        s.execute(delete(model))
    lines = ["NO,事業所名,日時,画面,処理,利用目的,処理者,結果"]
    truth: dict[str, tuple[int | None, bool, bool]] = {}
    for no, (day, minute, who, client, action, number) in enumerate(rows, start=1):
        op = PEOPLE[who][2] if who < len(PEOPLE) else "OP9999"
        office = CLIENTS[client] if client < len(CLIENTS) else UNMAPPED
        what, result, use, ok = ACTIONS[action]
        purpose = f"確認 {number}" if number else "年末調整"
        lines.append(f"{no},{office},{at(day, minute).astimezone(ZONE):%Y/%m/%d %H:%M},個人情報,"
                     f"{what},{purpose},{op},{result}")
        truth[str(no)] = (client + 1 if client < len(CLIENTS) else None, use, ok)
    got = import_csv(s, ("\r\n".join(lines) + "\r\n").encode("utf-8"), source="cells",
                     now=NOW, zone=ZONE)
    assert got.stored == len(rows), got.errors
    for seq, (day, minute, who, direction, granted) in enumerate(doors, start=1):
        s.add(DoorAccess(node="gw", seq=seq, ts=at(day, minute), door="room",
                         direction=direction, granted=granted,
                         reason=None if granted else "not_permitted",
                         person_id=PEOPLE[who][0] if who >= 0 else None, uid="04A1B2C3"))
    for seq, (day, minute, who, pages) in enumerate(prints, start=1):
        s.add(StoredEvent(node="gw", seq=10_000 + seq, kind="print.release",
                          ts=at(day, minute), received_at=NOW, boot="b", clock="synced",
                          person_id=PEOPLE[who][0], data={
                              "printer": "prn", "person_id": PEOPLE[who][0], "pages": pages},
                          prev="0" * 64, hash=f"{seq:064x}", sig="s"))
    s.flush()
    return truth


def annexes(text: str) -> tuple[str, dict[int, tuple[list[str], list[list[str]]]]]:
    """The body's text and each annex's header and rows, read back from the CSV."""
    body: list[str] = []
    out: dict[int, tuple[list[str], list[list[str]]]] = {}
    current: int | None = None
    for row in csv.reader(io.StringIO(text, newline="")):
        if len(row) == 1 and (m := re.match(r"^別紙(\d+) ", row[0])):
            current = int(m.group(1))
            out[current] = ([], [])
        elif current is None:
            body.append(" ".join(row))
        elif row and not out[current][0]:
            out[current] = (row, [])
        elif len(row) > 1:
            out[current][1].append(row)
    return "\n".join(body), out


def col(annex: tuple[list[str], list[list[str]]], name: str) -> list[str]:
    i = annex[0].index(name)
    return [r[i] for r in annex[1]]


def numbers_in(text: str) -> list[str]:
    """Every 12-digit run passing the check digit, whatever digits and separators were used."""
    folded = unicodedata.normalize("NFKC", text)
    digits = re.sub(r"(?<=\d)[\s\-ー－‐]{1,3}(?=\d)", "", folded)
    return [m for run in re.findall(r"\d{12,}", digits)
            for m in (run[i:i + 12] for i in range(len(run) - 11)) if my_number.is_valid(m)]


def check(text: str, truth: dict[str, tuple[int | None, bool, bool]], client: int | None
          ) -> None:
    body, a = annexes(text)
    mine = {no: t for no, t in truth.items() if client is None or t[0] == client}
    uses, logins = a[1], a[2]
    # each client's report: exactly its rows, uses in annex 1 and log-ins in annex 2
    assert set(col(uses, "NO")) == {no for no, t in mine.items() if t[1]}
    assert set(col(logins, "NO")) == {no for no, t in mine.items() if not t[1]}
    if client is not None:
        assert set(col(uses, "事業所名")) <= {CLIENTS[client - 1]}
    failed = sum(1 for no in col(uses, "NO") if not truth[no][2])
    n = re.search(r"個人番号の利用 (\d+) 件\(うち失敗・拒否 (\d+) 件\)", body)
    assert n and (int(n[1]), int(n[2])) == (len(uses[1]), failed)
    n = re.search(r"ログイン (\d+) 件\(うち失敗 (\d+) 件\)", body)
    assert n and (int(n[1]), int(n[2])) == (
        len(logins[1]), sum(1 for no in col(logins, "NO") if not truth[no][2]))
    directions, results = col(a[3], "入退"), col(a[3], "結果")
    n = re.search(r"入室 (\d+) 件・退室 (\d+) 件\(うち拒否 (\d+) 件\)", body)
    assert n and (int(n[1]), int(n[2]), int(n[3])) == (
        directions.count("入室"), directions.count("退室"), results.count("拒否"))
    n = re.search(r"印刷\(出力\) (\d+) 件", body)
    assert n and int(n[1]) == len(a[4][1])
    kinds = col(a[5], "区分")
    n = re.search(r"持出し (\d+) 件・返却 (\d+) 件・消去 (\d+) 件・廃棄 (\d+) 件", body)
    assert n and [int(x) for x in n.groups()] == [kinds.count(k) for k in
                                                   ("持出し", "返却", "消去", "廃棄")]
    n = re.search(r"削除・廃棄の証明 (\d+) 件", body)
    assert n and int(n[1]) == len(a[6][1])
    n = re.search(r"確認事項 (\d+) 件", body)
    assert n and int(n[1]) == len(a[8][1])
    n = re.search(r"利用は別紙1「個人番号関係事務処理一覧」\((\d+) 件\)", body)
    assert n and int(n[1]) == len(uses[1])
    # the people named as having handled the numbers are the mapped operators of annex 1
    n = re.search(r"担当者 (\d+) 名: (.*)$", body, re.M)
    named = {x for x in col(uses, "処理者") if not x.startswith("未登録")}
    assert n and int(n[1]) == len(named)
    assert (set(n[2].split("、")) if n[2] != "-" else set()) == named
    if client is not None:  # entries are those of the people who used its numbers
        assert set(col(a[3], "氏名")) <= named
    assert not numbers_in(text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row_st, min_size=0, max_size=60),
       doors=st.lists(door_st, max_size=30), prints=st.lists(print_st, max_size=10))
def test_every_count_equals_its_rows_per_client(sm: sessionmaker[Session], rows: list[Any],
                                                doors: list[Any], prints: list[Any]) -> None:
    with sm() as s:
        truth = _load(s, rows, doors, prints)
        profile = office_profile(s)
        for client in [None, *range(1, len(CLIENTS) + 1)]:
            d = gather(s, "2026-11", client, ZONE, NOW)
            doc = build(d, profile, measures_of(profile), "ja", SEAL,
                        Issue("2026-0001", NOW), str)
            check(render_csv(doc).decode("utf-8-sig"), truth, client)
        s.rollback()
