"""Chromium checks a medium out through the real dashboard: the requester cannot approve their
own request, a second admin approves with their password, the ledger and the person's view
show the check-out; screenshots of the ledger, the medium and the USB events page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.envelope import now_utc
from dashboard.media import service
from dashboard.models.media import Medium
from tests.dashboard.media.conftest import add_people, medium_data, wire
from tests.dashboard.web.conftest import PASSWORD, LiveDashboard, add_user, artifacts_dir

pytestmark = pytest.mark.integration


def test_check_out_with_a_second_person(live_dashboard: LiveDashboard,
                                        browser_page: Any) -> None:
    live, page = live_dashboard, browser_page
    wire(live.app)
    add_user(live.sessionmaker, live.settings, "sec2", "security_admin")
    with live.sessionmaker.begin() as db:
        add_people(db, now_utc())
        cn = service.register_medium(db, "seed", medium_data(), now=now_utc()).control_number
    shots = artifacts_dir()
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text)
            if msg.type == "error" else None)

    page.goto(live.base_url + "/media")
    assert "/login" in page.url
    page.fill("input[name=username]", live.username)
    page.fill("input[name=password]", live.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector(f'tr[data-medium="{cn}"]')
    assert page.locator("h1").inner_text() == "媒体管理台帳"
    page.screenshot(path=str(shots / "media-ledger.png"), full_page=True)

    page.click(f'tr[data-medium="{cn}"] a[href="/media/{cn}"]')
    page.wait_for_selector("#checkout-form")
    due = (now_utc() + timedelta(days=3)).astimezone(live.settings.zone)
    form = page.locator("#checkout-form")
    form.locator("select[name=holder]").select_option("p2")
    form.locator("input[name=purpose]").fill("年末調整データの受け渡し")
    form.locator("input[name=due_back]").fill(due.strftime("%Y-%m-%dT%H:%M"))
    form.locator("input[name=approver]").fill(live.username)  # the requester themselves
    form.locator("input[name=approver_password]").fill(live.password)
    form.locator("button[type=submit]").click()
    alert = page.wait_for_selector("p.flash.error[role=alert]")
    assert "second person" in alert.inner_text()
    with live.sessionmaker() as db:
        assert db.get(Medium, cn).state == "in_storage"

    form = page.locator("#checkout-form")
    form.locator("select[name=holder]").select_option("p2")
    form.locator("input[name=purpose]").fill("年末調整データの受け渡し")
    form.locator("input[name=due_back]").fill(due.strftime("%Y-%m-%dT%H:%M"))
    form.locator("input[name=approver]").fill("sec2")
    form.locator("input[name=approver_password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#medium-holder")
    assert page.locator("#medium-state").inner_text() == "持出し中"
    assert page.locator("#medium-approval").inner_text() == f"{live.username} / sec2"
    assert "保存しました" in page.locator("p.flash").inner_text()
    page.screenshot(path=str(shots / "media-checked-out.png"), full_page=True)
    with live.sessionmaker() as db:
        row = db.get(Medium, cn)
        assert (row.state, row.holder, row.approved_by) == ("checked_out", "p2", "sec2")
        assert row.due_back is not None and abs(row.due_back - due) < timedelta(minutes=1)

    page.click("#medium-holder a")
    page.wait_for_selector("#person-media")
    assert cn in page.locator("#person-media").inner_text()
    assert "年末調整データの受け渡し" in page.locator("#person-history").inner_text()
    page.goto(live.base_url + "/usb-events")
    page.wait_for_selector("#usb-events")
    page.screenshot(path=str(shots / "usb-events.png"), full_page=True)
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
