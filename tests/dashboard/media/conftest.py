"""Fixtures for the media ledger: people to hold media, registration data, and a web app with
the media router wired in (until the lead adds it to the app factory and the role matrix)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

import dashboard.models.media  # noqa: F401 - registers the media tables on Base.metadata
from dashboard import services
from dashboard.media.web import router
from tests.dashboard.web.conftest import (  # noqa: F401 - the browser fixtures are reused
    Clock,
    ClosedBus,
    WebApp,
    browser_page,
    live_dashboard,
    make_db,
    make_settings,
)
from tests.usb_guard.conftest import harness, sim  # noqa: F401 - the agent harness is reused

NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
PEOPLE = {"p1": "佐藤 花子", "p2": "鈴木 一郎", "p3": "高橋 次郎"}


def wire(app: Any) -> None:
    """Add the media routes to an app built by ``create_app`` unless it already has them."""
    names = {getattr(r, "name", None) for r in app.router.routes}
    if "media.page" not in names:
        app.router.routes.extend(router.routes)


def add_people(db: Session, now: datetime = NOW) -> None:
    for pid, name in PEOPLE.items():
        services.create_person(db, "seed", {"id": pid, "name": name}, now=now)


def medium_data(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "vendor_id": "0781", "product_id": "5581", "serial": secrets.token_hex(6).upper(),
        "descriptors_sha256": secrets.token_hex(32), "interfaces": ["08:06:50"],
        "token_digest": secrets.token_hex(32), "make": "SanDisk", "model": "Ultra 32GB",
        "capacity": "32 GB", "custodian": "p1", "hosts": ["pc-01"],
    }
    data.update(over)
    return data


@pytest.fixture
def media_app(tmp_path: Path) -> Iterator[WebApp]:
    """The dashboard app (SQLite) with the media routes, three people and a settable clock."""
    settings = make_settings(tmp_path / "data")
    sm = make_db(settings)
    clock = Clock(NOW)
    from dashboard.app import create_app

    app = create_app(settings, sessionmaker=sm, bus=ClosedBus(), clock=clock)
    wire(app)
    with sm.begin() as db:
        add_people(db)
    w = WebApp(settings, sm, app, clock)
    yield w
    for c in w.clients.values():
        c.close()


def register_form(w: WebApp, **over: Any) -> str:
    c, csrf = w.as_role("admin")
    d = medium_data(**over)
    form = {**{k: v for k, v in d.items() if k not in ("interfaces", "hosts")},
            "hosts": ", ".join(d["hosts"]), "csrf_token": csrf}
    r = c.post("/media", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"].split("/media/")[1].split("?")[0]
