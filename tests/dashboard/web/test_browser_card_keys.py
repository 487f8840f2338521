"""Chromium on the real dashboard (uvicorn): the security admin creates the first card master
key and rotates it on the card keys page (each after its confirmation step), sees the person
whose card is still on the previous key, the node re-keys that card at a tap (its signed
card.rekeyed event through the ingest and the dashboard's enrolment sender, as in
production), the page shows no card left on the previous key, and the admin retires it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from controller.card_events import KIND_REKEYED
from controller.keys import generate
from dashboard import services
from dashboard.card_enrol import EnrolSender
from dashboard.i18n import catalogue
from dashboard.ingest.core import IngestCore
from dashboard.models.audit import AuditRecord
from dashboard.models.cardkeys import CardMasterKey
from tests.dashboard.conftest import FakeNode, msg
from tests.dashboard.test_policy_signer import Sink
from tests.dashboard.web.conftest import (
    LiveDashboard,
    add_user,
    browser_log_in,
    chromium,
)

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NAME = "鈴木 一郎"
UID = "04C0FFEE112233"


def _rotate(page: Any) -> None:
    with page.expect_navigation():
        page.click("#rotate-start button")
    with page.expect_navigation():
        page.click("#rotate-form button")


def _keys(live: LiveDashboard) -> dict[str, str]:
    with live.sessionmaker() as db:
        return {k.state: k.key_id for k in db.scalars(select(CardMasterKey))}


def test_rotate_rekey_at_a_tap_and_retire(live_dashboard: LiveDashboard) -> None:
    live, ja = live_dashboard, catalogue("ja")
    site = live.settings.site
    assert live.settings.policy_key_file is not None
    generate(live.settings.policy_key_file)  # as `secroom dashboard run` makes it
    node = FakeNode("gw1", site=site)
    with live.sessionmaker() as db:
        node.enrol(db)
    with live.sessionmaker.begin() as db:
        services.create_person(db, "hq", {"id": "p1", "name": NAME}, now=T0)
    add_user(live.sessionmaker, live.settings, "sec", "security_admin")

    with chromium("ja-JP") as page:
        browser_log_in(page, live.base_url, "sec")
        page.hover(".navgroup:has(a[href='/card-keys']) .navhead")  # from the settings menu
        page.click("header nav a[href='/card-keys']")
        page.wait_for_url("**/card-keys")
        assert ja["card_keys.none"] in page.locator("#card-keys").inner_text()
        _rotate(page)  # the first key
        assert ja["card_keys.rotated"] in page.locator("[role=status]").inner_text()
        first = _keys(live)["active"]
        with live.sessionmaker.begin() as db:  # a card personalised with it (as at a reader)
            services.enrol_card(db, "hq", "p1", UID, now=T0, credential="desfire",
                                key_id=first)

        page.reload()
        _rotate(page)
        second = _keys(live)["active"]
        row = page.locator(f'tr[data-key="{first}"]')
        assert ja["card_keys.state.previous"] in row.inner_text()
        assert ja["card_keys.card_count"].format(n=1) in row.inner_text()
        people = page.locator("#on-previous").inner_text()
        assert NAME in people and ja["card_keys.type.desfire"] in people
        assert ja["card_keys.retire_impact"].format(n=1) in page.locator(
            "#retire-impact").inner_text()
        assert page.locator("#retire-form input[name=accept]").count() == 1

        # the node re-keys the card at a tap: its signed event, ingested, then followed
        event = node.event(KIND_REKEYED, {"reader": "d1-in", "card": UID,
                                          "card_type": "desfire", "key_id": second,
                                          "previous_key": first})
        with live.sessionmaker() as db:
            assert IngestCore(site=site).process(db, [msg(event)], T0).counts["stored"] == 1
            db.commit()
        EnrolSender(live.sessionmaker, Ed25519PrivateKey.generate(), site=site,
                    publish=Sink(), clock=lambda: T0).poll()

        page.reload()
        row = page.locator(f'tr[data-key="{first}"]')
        assert ja["card_keys.card_count"].format(n=0) in row.inner_text()
        assert ja["card_keys.card_count"].format(n=1) in page.locator(
            f'tr[data-key="{second}"]').inner_text()
        assert NAME not in page.locator("#on-previous").inner_text()
        assert ja["card_keys.retire_safe"] in page.locator("#retire-impact").inner_text()
        with page.expect_navigation():
            page.click("#retire-form button[type=submit]")
        assert ja["card_keys.retired"] in page.locator("[role=status]").inner_text()
        assert ja["card_keys.state.retired"] in page.locator(
            f'tr[data-key="{first}"]').inner_text()
    assert _keys(live) == {"retired": first, "active": second}
    with live.sessionmaker() as db:
        trail = [(r.action, r.actor) for r in db.scalars(
            select(AuditRecord).order_by(AuditRecord.seq))
            if r.action.startswith("card_key.") or r.action == "card.rekey"]
    assert trail == [("card_key.rotate", "sec"), ("card_key.rotate", "sec"),
                     ("card.rekey", "node:gw1"), ("card_key.retire", "sec")]
