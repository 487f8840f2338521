"""Chromium enrols a card by a tap as an editor does: choose the reader by its door's name,
start the window and watch its countdown, see a tap at the USB agent's same-named reader
ignored and counted, see the card presented at the chosen reader (where and when), confirm it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dashboard import services
from dashboard.enrolment import WINDOW_S
from dashboard.models import AuditRecord, Card, DoorAccess
from tests.dashboard.web.conftest import LiveDashboard, artifacts_dir
from tests.dashboard.web.test_browser import log_in, tap_message, watch_requests

pytestmark = pytest.mark.integration


def test_enrol_a_card_at_the_chosen_reader(live_dashboard: LiveDashboard,
                                           browser_page: Any) -> None:
    page, live = browser_page, live_dashboard
    foreign, console_errors = watch_requests(page, live)
    now = datetime.now(UTC)
    with live.sessionmaker.begin() as db:
        services.create_door(db, "seed", {"id": "server-room", "name": "サーバー室"}, now=now)
        services.create_person(db, "seed", {"id": "p1", "name": "山田 太郎"}, now=now)
        for seq, node in enumerate(("gw1", "pc-01"), 1):
            db.add(DoorAccess(node=node, seq=seq, ts=now - timedelta(hours=1),
                              door="server-room", direction="in", granted=False,
                              reason="unknown_card", uid="FFFF0000", reader="door-in"))
    log_in(page, live)
    page.goto(live.base_url + "/people/p1")
    labels = page.locator("#enrol-form select[name=reader] option").all_inner_texts()
    assert labels == ["サーバー室（入）— gw1 · door-in", "サーバー室（入）— pc-01 · door-in"]
    page.select_option("#enrol-form select[name=reader]", "gw1:door-in")
    page.click("#enrol-form button[type=submit]")
    page.wait_for_selector("#enrol-window")
    # the countdown runs in the page
    page.wait_for_function(
        "(limit) => Number(document.getElementById('enrol-countdown').textContent) < limit",
        arg=WINDOW_S)

    usb_tap = tap_message("door-in", "0BADC0DE", 41, False)
    usb_tap["node"] = "pc-01"
    live.bus.publish("event", usb_tap)
    page.wait_for_selector("#enrol-window #enrol-ignored [data-reason=other_node]")

    live.bus.publish("event", tap_message("door-in", "0A0B0C0D", 42, False))
    page.wait_for_selector("#enrol-candidate[data-uid='0A0B0C0D']")
    assert page.inner_text("#enrol-reader") == "サーバー室（入）— gw1 · door-in"
    local = now.astimezone(live.settings.zone)  # the site's time, as a Japanese date
    assert page.inner_text("#enrol-at").startswith(f"{local.year}年{local.month}月{local.day}日")
    with live.sessionmaker() as db:
        assert db.get(Card, "0A0B0C0D") is None  # shown, not bound
    page.screenshot(path=str(artifacts_dir() / "enrol-candidate.png"), full_page=True)

    page.click("#enrol-confirm button[type=submit]")
    page.wait_for_selector("#cards tr[data-uid='0A0B0C0D']")
    with live.sessionmaker() as db:
        card = db.get(Card, "0A0B0C0D")
        assert card is not None and card.person_id == "p1" and card.active
        assert db.get(Card, "0BADC0DE") is None
        last = db.scalar(select(AuditRecord).order_by(AuditRecord.seq.desc()))
        assert last is not None and last.action == "card.enrol"
        assert last.after["presented"]["node"] == "gw1"
        assert last.after["presented"]["ignored"] == {"other_node": 1}
    assert foreign == [], foreign
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
