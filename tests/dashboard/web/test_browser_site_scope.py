"""Chromium on the real dashboard (uvicorn): the admin limits a security admin to one site on the
users page; that account, logging in again, sees its own site's people only, and another
site's person's page answers "not found"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dashboard.i18n import catalogue
from dashboard.models.audit import AuditRecord
from dashboard.models.auth import User
from tests.dashboard.web.conftest import (
    LiveDashboard,
    add_user,
    browser_log_in,
    chromium,
)

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NAMES = {"osaka": "大阪 太郎", "nagoya": "名古屋 花子"}


def _seed(live: LiveDashboard) -> None:
    from dashboard import services
    from dashboard.models import Node

    with live.sessionmaker.begin() as db:
        for i, site in enumerate(NAMES):
            db.add(Node(name=f"{site}-gw1", site=site, key_status="approved",
                        public_key=f"k{i}", roles="door_gateway", first_seen_at=T0))
            services.create_person(db, "hq", {"id": f"p-{site}", "name": NAMES[site],
                                              "site": site}, now=T0)
    add_user(live.sessionmaker, live.settings, "sec", "security_admin")


def test_the_admin_limits_a_security_admin_to_its_site(live_dashboard: LiveDashboard) -> None:
    live = live_dashboard
    _seed(live)
    ja = catalogue("ja")
    with chromium("ja-JP") as page:
        browser_log_in(page, live.base_url, live.username, live.password)
        page.goto(live.base_url + "/users")
        form = page.locator('form[data-scope-form="sec"]')
        form.locator("select[name=site]").select_option("osaka")
        with page.expect_navigation():
            form.locator("button[name=scope]").click()
        row = page.locator('tr[data-user="sec"]')
        assert ja["users.scope_site"].format(site="osaka") in row.inner_text()

        browser_log_in(page, live.base_url, "sec")
        page.goto(live.base_url + "/people")
        text = page.locator("#people").inner_text()
        assert NAMES["osaka"] in text and NAMES["nagoya"] not in text
        response = page.goto(live.base_url + "/people/p-nagoya")
        assert response is not None and response.status == 404
        response = page.goto(live.base_url + "/people/p-osaka")
        assert response is not None and response.status == 200
    with live.sessionmaker() as s:
        assert s.scalars(select(User.site).where(User.username == "sec")).one() == "osaka"
        assert s.scalar(select(AuditRecord.actor).where(AuditRecord.action == "user.scope")) \
            == live.username
