"""The review queue over the demo office's month: one list with filters by name, counts,
sorting, paging; an item's page with its sentence, rule, time strip (trigger highlighted) and
history; acknowledge, resolve, assign, escalate and bulk acknowledge, each audited."""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.app import create_app
from dashboard.db import make_engine, make_sessionmaker
from dashboard.models import Anomaly, AuditRecord
from dashboard.names import Names
from dashboard.review.queue import Filters, queue
from tests.dashboard.web.conftest import PASSWORD

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dashboard.demo import world

    base = tmp_path_factory.mktemp("review-world")
    world.build(base / "data", password=PASSWORD)
    return base


@pytest.fixture
def office(seeded: Path, tmp_path: Path) -> Iterator[Any]:
    """A fresh copy of the seeded office per test (actions change it)."""
    shutil.copytree(seeded / "data", tmp_path / "data")
    from dashboard.settings import DashboardSettings

    settings = DashboardSettings(data_dir=tmp_path / "data", site="tokyo-hq")
    sm = make_sessionmaker(make_engine(settings.database_url))
    app = create_app(settings, sessionmaker=sm)

    class Office:
        def __init__(self) -> None:
            self.sm, self.app = sm, app

        def client(self, user: str) -> tuple[TestClient, str]:
            c = TestClient(app)
            page = c.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token
            c.post("/login", data={"username": user, "password": PASSWORD,
                                   "csrf_token": token.group(1), "next": "/review"})
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/review").text)
            assert csrf
            return c, csrf.group(1)

        def item(self, kind: str) -> Anomaly:
            with sm() as db:
                row = db.scalar(select(Anomaly).where(Anomaly.kind == kind))
                assert row is not None, kind
                db.expunge(row)
                return row

    yield Office()


def rows(html: str) -> list[str]:
    return re.findall(r'<tr id="item-(\d+)"', html)


def test_one_queue_in_japanese_with_names_and_counts(office: Any) -> None:
    c, _ = office.client("anzen")
    html = c.get("/review").text
    assert len(rows(html)) >= 9
    # sentences name people and places, never ids or dotted kinds
    assert "鈴木 健一 が" in html and "管理区域に不在" in html
    assert "サーバールーム が" in html and "複合機 で印刷" in html
    text = re.sub(r"<[^>]+>", " ", html)
    for raw in ("corr.", "server-room", "room-printer", "gw1-history", "access_not_in_room"):
        assert raw not in text, raw
    assert re.search(r'data-count-state="open">未対応 (\d+)', html)


def test_filters_take_names_and_staff_numbers(office: Any) -> None:
    c, _ = office.client("anzen")
    suzuki = office.item("corr.access_not_in_room")
    for person in ("鈴木", "鈴木健一", "s002"):
        found = rows(c.get("/review", params={"person": person}).text)
        assert found == [str(suzuki.id)], person
    at_door = rows(c.get("/review", params={"place": "サーバールーム"}).text)
    with office.sm() as db:
        door_items = {str(a.id) for a in db.scalars(select(Anomaly).where(
            Anomaly.place == "server-room", Anomaly.state == "open"))}
    assert door_items and set(at_door) == door_items
    critical = c.get("/review", params={"severity": "critical"}).text
    assert 'data-severity="warning"' not in critical and 'data-severity="critical"' in critical
    assert rows(c.get("/review", params={"kind": "corr.number_in_log"}).text) == \
        [str(office.item("corr.number_in_log").id)]


def test_sorting_and_paging_with_counts(office: Any) -> None:
    with office.sm() as db:
        names = Names.load(db)
        by_sev = queue(db, names, Filters(sort="severity", desc=False))
        sev = [a.severity for a in by_sev.items]
        assert sev == sorted(sev, key=["critical", "warning", "info"].index)
        first = queue(db, names, Filters(page=1), page_size=4)
        second = queue(db, names, Filters(page=2), page_size=4)
        assert first.total == second.total >= 9 and first.pages == -(-first.total // 4)
        assert not {a.id for a in first.items} & {a.id for a in second.items}
        assert [a.at for a in first.items] == sorted([a.at for a in first.items], reverse=True)
    c, _ = office.client("anzen")
    html = c.get("/review").text
    assert re.search(r"\d+ 件中 1–\d+ 件", html)


def test_item_page_shows_evidence_rule_and_trigger(office: Any) -> None:
    c, _ = office.client("anzen")
    item = office.item("corr.access_not_in_room")
    html = c.get(f"/review/{item.id}").text
    assert "id=\"rule-explanation\"" in html and "在室記録" in html
    # the strip: the stays around it, the door taps, and the triggering access highlighted
    assert html.count('<tr class="hl trigger"') == 1
    trigger = html[html.index('<tr class="hl trigger"'):]
    trigger = trigger[:trigger.index("</tr>")]
    assert "閲覧" in trigger and "きっかけ" in trigger
    assert "12:00:00" in html and "退室" in html  # he left at noon
    assert '<circle' in html and 'class="trigger"' in html


def test_actions_are_audited_and_shown_in_the_history(office: Any) -> None:
    c, csrf = office.client("anzen")
    item = office.item("corr.access_not_in_room")
    r = c.post(f"/review/{item.id}/acknowledge", data={"reason": "", "csrf_token": csrf})
    assert r.status_code == 409 and "理由を入力してください" in r.text  # in the UI language
    r = c.post(f"/review/{item.id}/escalate", data={"reason": "本人に確認中",
                                                    "csrf_token": csrf})
    assert r.status_code == 200  # followed the redirect
    c.post(f"/review/{item.id}/assign", data={"assignee": "admin", "csrf_token": csrf})
    c.post(f"/review/{item.id}/acknowledge", data={"reason": "昼休みの操作", "csrf_token": csrf})
    c.post(f"/review/{item.id}/resolve", data={"reason": "共有端末の閉め忘れ", "csrf_token": csrf})
    with office.sm() as db:
        row = db.get(Anomaly, item.id)
        assert row is not None and row.state == "resolved" and row.assignee == "admin"
        assert row.severity == "critical" and row.escalated_by == "anzen"
        actions = [r.action for r in db.scalars(select(AuditRecord).where(
            AuditRecord.target_type == "anomaly", AuditRecord.target_id == str(item.id))
            .order_by(AuditRecord.seq))]
    assert actions == ["anomaly.escalate", "anomaly.assign", "anomaly.acknowledge",
                       "anomaly.resolve"]
    html = c.get(f"/review/{item.id}").text
    history = html[html.index('id="history"'):]
    for word in ("エスカレーション", "担当者の割当て", "昼休みの操作", "共有端末の閉め忘れ",
                 "安全管理 井上"):
        assert word in history, word


def test_bulk_acknowledge_only_identical_low_severity(office: Any) -> None:
    c, csrf = office.client("anzen")
    warning = office.item("corr.usb_blocked")
    other = office.item("corr.unknown_operator")
    critical = office.item("corr.number_in_log")
    mixed = c.post("/review/bulk-acknowledge", data={"ids": [warning.id, other.id],
                                                      "reason": "確認", "csrf_token": csrf})
    assert mixed.status_code == 409 and "同じ種類" in mixed.text
    crit = c.post("/review/bulk-acknowledge", data={"ids": [critical.id], "reason": "確認",
                                                     "csrf_token": csrf})
    assert crit.status_code == 409 and "一件ずつ" in crit.text
    ok = c.post("/review/bulk-acknowledge", data={"ids": [warning.id], "reason": "点検の機器",
                                                   "csrf_token": csrf}, follow_redirects=False)
    assert ok.status_code == 303
    with office.sm() as db:
        assert db.get(Anomaly, warning.id).state == "acknowledged"  # type: ignore[union-attr]
        assert db.get(Anomaly, other.id).state == "open"  # type: ignore[union-attr]


def test_auditor_reads_but_cannot_act(office: Any) -> None:
    c, csrf = office.client("kansa")
    item = office.item("corr.usb_blocked")
    assert c.get(f"/review/{item.id}").status_code == 200
    assert 'id="actions"' not in c.get(f"/review/{item.id}").text
    r = c.post(f"/review/{item.id}/acknowledge", data={"reason": "x", "csrf_token": csrf})
    assert r.status_code == 403


def test_api_lists_the_same_queue_with_sentences_in_either_language(office: Any) -> None:
    c, _ = office.client("anzen")
    en = c.get("/api/v1/review", params={"lang": "en", "person": "鈴木"}).json()
    assert en["total"] == 1
    (item,) = en["items"]
    assert item["person_name"] == "鈴木 健一" and "while not in the controlled area" in \
        item["sentence"]
    assert item["kind"] == "corr.access_not_in_room" and item["severity_label"] == "Critical"
