"""Chromium drives the real dashboard: log in, overview, a tap appears live without reload,
enrol a card by tapping it at a chosen reader and confirming it, revoke it; a screenshot of
each main page; nothing loaded from anywhere but the dashboard itself, and no CSP violation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from controller.envelope import format_ts
from dashboard.i18n import catalogue
from tests.dashboard.web.conftest import LiveDashboard, artifacts_dir, seed_sample

pytestmark = pytest.mark.integration

MAIN_PAGES = ["/", "/door-log", "/presence", "/people", "/groups", "/doors", "/printers",
              "/lockdown", "/nodes", "/anomalies", "/audit", "/users"]


def tap_message(reader: str, uid: str, seq: int, granted: bool) -> dict[str, Any]:
    return {
        "node": "gw1", "seq": seq, "kind": "door.access", "ts": format_ts(datetime.now(UTC)),
        "person_id": None, "door": "server-room",
        "data": {"door": "server-room", "direction": "in", "granted": granted,
                 "reason": None if granted else "unknown_card", "card": uid, "reader": reader},
    }


def seen_reader(live: LiveDashboard, node: str, reader: str) -> None:
    """A tap stored in the door log: the enrolment offers only readers the dashboard has seen."""
    from dashboard.models import DoorAccess

    with live.sessionmaker.begin() as db:
        db.add(DoorAccess(node=node, seq=1, ts=datetime.now(UTC), door="server-room",
                          direction="in", granted=False, reason="unknown_card", uid="FFFF0000",
                          reader=reader))


def log_in(page: Any, live: LiveDashboard) -> None:
    page.goto(live.base_url + "/")
    assert "/login" in page.url
    page.fill("input[name=username]", live.username)
    page.fill("input[name=password]", live.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#in-room-count")


def watch_requests(page: Any, live: LiveDashboard) -> tuple[list[str], list[str]]:
    foreign: list[str] = []
    console_errors: list[str] = []
    page.on("request", lambda req: None if req.url.startswith(live.base_url)
            or req.url.startswith("data:") else foreign.append(req.url))
    page.on("console", lambda msg: console_errors.append(msg.text)
            if msg.type == "error" else None)
    return foreign, console_errors


def test_log_in_watch_a_tap_live_enrol_and_revoke(
    live_dashboard: LiveDashboard, browser_page: Any
) -> None:
    page, live = browser_page, live_dashboard
    shots = artifacts_dir()
    foreign, console_errors = watch_requests(page, live)
    log_in(page, live)
    assert page.locator("html").get_attribute("lang") == "ja"
    page.wait_for_function("() => document.body.dataset.liveState === 'open'")

    # a stored event reaches the open overview without a reload
    marker = page.evaluate("() => { window.__noReload = 1; return 1 }")
    from dashboard.models import DoorAccess

    with live.sessionmaker.begin() as db:  # stored first, as the ingest does, then published
        db.add(DoorAccess(node="gw1", seq=41, ts=datetime.now(UTC), door="server-room",
                          direction="in", granted=True, uid="DEADBEEF", reader="door-in"))
    live.bus.publish("event", tap_message("door-in", "DEADBEEF", 41, granted=True))
    row = page.wait_for_selector("tbody[data-live-rows=events] tr")
    assert "server-room" in row.inner_text()
    page.wait_for_function("() => document.getElementById('entries-today').textContent === '1'")
    assert page.evaluate("() => window.__noReload") == marker
    page.screenshot(path=str(shots / "overview.png"), full_page=True)

    # people: create a person, then enrol a card by tapping it at gw1's door-in reader
    seen_reader(live, "gw1", "door-in")
    page.goto(live.base_url + "/people")
    page.fill("#person-new input[name=id]", "p1")
    page.fill("#person-new input[name=name]", "山田 太郎")
    page.click("#person-new button[type=submit]")
    page.select_option("#enrol-form select[name=reader]", "gw1:door-in")
    page.click("#enrol-form button[type=submit]")
    page.wait_for_selector("#enrol-window #enrol-countdown")
    live.bus.publish("event", tap_message("door-in", "0A0B0C0D", 42, False))
    page.wait_for_selector("#enrol-candidate[data-uid='0A0B0C0D']")  # shown, not yet bound
    page.click("#enrol-confirm button[type=submit]")
    page.wait_for_selector("#cards tr[data-uid='0A0B0C0D']")
    assert catalogue("ja")["people.card_bound"] in page.locator("[role=status]").inner_text()
    page.screenshot(path=str(shots / "person.png"), full_page=True)

    # revoke the right (the card): confirm the dialog, the card shows as revoked
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cards tr[data-uid='0A0B0C0D'] button.danger")
    page.wait_for_selector("#cards tr[data-uid='0A0B0C0D'] .badge.denied")
    with live.sessionmaker() as db:
        from sqlalchemy import select

        from dashboard.models import AuditRecord, Card

        card = db.get(Card, "0A0B0C0D")
        assert card is not None and not card.active and card.revoked_at is not None
        last = db.scalar(select(AuditRecord).order_by(AuditRecord.seq.desc()))
        assert last is not None and (last.action, last.actor) == ("card.revoke", live.username)

    seed_sample(live.sessionmaker, live.settings.site, datetime.now(UTC))
    for path in MAIN_PAGES:
        page.goto(live.base_url + path)
        page.wait_for_load_state("load")
        assert page.locator("main h1").count() == 1, path
        name = "overview-after" if path == "/" else path.strip("/").replace("/", "-")
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    # English on request, from the header link
    page.click("a[lang=en]")
    page.wait_for_selector("html[lang=en]")
    assert page.inner_text("main h1") == "Users"
    assert foreign == [], foreign
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
