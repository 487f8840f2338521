"""Fixtures for the web layer: an app on a temp SQLite DB, users of every role, a live server
(uvicorn in a thread) and a Chromium page for browser tests."""

from __future__ import annotations

import os
import re
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

import dashboard.models  # noqa: F401 - registers every table on Base.metadata
from dashboard.app import create_app
from dashboard.auth.roles import Role
from dashboard.auth.service import AuthService
from dashboard.db import Base, make_engine, make_sessionmaker
from dashboard.settings import DashboardSettings
from tests.support import free_port, unavailable, wait_until

with warnings.catch_warnings():
    # starlette's TestClient prefers httpx2; the project pins httpx (see the report).
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery staple"  # noqa: S105 - test users only
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def make_settings(data_dir: Path, **overrides: Any) -> DashboardSettings:
    return DashboardSettings(data_dir=data_dir, site="lab", **overrides)


def make_db(settings: DashboardSettings) -> sessionmaker[DbSession]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    Base.metadata.create_all(engine)
    return make_sessionmaker(engine)


def add_user(
    sm: sessionmaker[DbSession], settings: DashboardSettings, username: str, role: str
) -> None:
    auth = AuthService(settings, sm)
    with sm.begin() as db:
        auth.create_user(db, username=username, role=role, password=PASSWORD, now=datetime.now(UTC))


def csrf_of(client: TestClient) -> str:
    """The session's CSRF token, as every page embeds it in its forms."""
    html = client.get("/nodes").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in page"
    return match.group(1)


def post_login(
    client: TestClient, username: str, password: str = PASSWORD, next_: str = "/nodes"
) -> Any:
    """Fill in the log-in form (with its CSRF token) and send it; the response, unfollowed."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1),
              "next": next_},
        follow_redirects=False,
    )


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    r = post_login(client, username, password)
    assert r.status_code == 303, r.text
    return csrf_of(client)


class Clock:
    """A settable clock for session expiry and time-zone tests."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ClosedBus:
    """A bus whose subscriptions are already closed: the SSE stream ends at once."""

    subscribers = 0

    def subscribe(self, topics: Any = (), maxsize: int = 0) -> Any:
        from dashboard.bus import Bus

        sub = Bus().subscribe()
        sub.close()
        return sub

    def publish(self, topic: Any, data: Any) -> None:
        """Nobody listens."""


@dataclass
class WebApp:
    settings: DashboardSettings
    sm: sessionmaker[DbSession]
    app: Any
    clock: Clock
    clients: dict[str, TestClient] = field(default_factory=dict)
    csrf: dict[str, str] = field(default_factory=dict)

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="http://testserver")

    def token(self, role: str, scopes: set[str]) -> str:
        """An API token for the ``role`` user (created if needed) with ``scopes``."""
        self.as_role(role)
        auth = AuthService(self.settings, self.sm)
        from sqlalchemy import select

        from dashboard.models.auth import User

        with self.sm.begin() as db:
            uid = db.scalar(select(User.id).where(User.username == f"u_{role}"))
            assert uid is not None
            _, secret = auth.create_token(
                db, user_id=uid, name=f"t-{role}", scopes=scopes, now=self.clock()
            )
        return secret

    def as_role(self, role: str) -> tuple[TestClient, str]:
        """A logged-in client for a user with ``role`` and its CSRF token (cached)."""
        if role not in self.clients:
            add_user(self.sm, self.settings, f"u_{role}", role)
            c = self.client()
            self.csrf[role] = login(c, f"u_{role}")
            self.clients[role] = c
        return self.clients[role], self.csrf[role]


@pytest.fixture
def webapp(tmp_path: Path) -> Iterator[WebApp]:
    settings = make_settings(tmp_path / "data")
    sm = make_db(settings)
    clock = Clock()
    app = create_app(settings, sessionmaker=sm, bus=ClosedBus(), clock=clock)
    w = WebApp(settings, sm, app, clock)
    yield w
    for c in w.clients.values():
        c.close()


@pytest.fixture
def webapp_db(tmp_path: Path, sm: sessionmaker[DbSession]) -> Iterator[WebApp]:
    """Like ``webapp`` but over the dashboard core's ``sm`` fixture: SQLite and PostgreSQL
    (the same tests run on both)."""
    settings = make_settings(tmp_path / "data")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clock = Clock()
    app = create_app(settings, sessionmaker=sm, bus=ClosedBus(), clock=clock)
    w = WebApp(settings, sm, app, clock)
    yield w
    for c in w.clients.values():
        c.close()


@dataclass
class LiveDashboard:
    """A real uvicorn serving the dashboard; reusable by the lead's end-to-end tests."""

    base_url: str
    username: str
    password: str
    sessionmaker: sessionmaker[DbSession]
    settings: DashboardSettings
    app: Any
    bus: Any
    runtime: Any = None


def artifacts_dir() -> Path:
    root = os.environ.get("SECROOM_TEST_ARTIFACTS")
    path = Path(root) if root else Path(tempfile.gettempdir()) / "secroom-artifacts"
    path = path / "dashboard"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def run_live_dashboard(
    data_dir: Path, *, mqtt: Any = None, **overrides: Any
) -> Iterator[LiveDashboard]:
    """Serve the dashboard with uvicorn in a thread on a free port, with an admin user.

    With ``mqtt`` (controller.mqtt.MqttSettings) the full runtime runs too: MQTT ingest into
    the database and the bus, and the policy signer publishing to the broker (as
    `secroom dashboard run` does). Reusable by end-to-end tests.
    """
    from dashboard.runtime import build_runtime

    settings = make_settings(data_dir, mqtt=mqtt, **overrides)
    sm = make_db(settings)
    add_user(sm, settings, "admin", Role.admin.value)
    runtime = build_runtime(settings)  # same database file as ``sm``
    app = create_app(settings, sessionmaker=runtime.sessionmaker, bus=runtime.bus)
    runtime.start()
    try:
        with serve_app(app) as base_url:
            yield LiveDashboard(base_url, "admin", PASSWORD, runtime.sessionmaker, settings, app,
                                runtime.bus, runtime)
    finally:
        runtime.stop()


@contextmanager
def serve_app(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn in a thread on a free loopback port (or ``port``, for a
    dashboard that a node knows before it is up); yields its URL. Requests run concurrently,
    as in production (sync routes in uvicorn's thread pool)."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-live", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 15, "uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def live_dashboard(tmp_path: Path) -> Iterator[LiveDashboard]:
    """The dashboard on a free port (no MQTT): base_url, admin credentials, sessionmaker, bus."""
    with run_live_dashboard(tmp_path / "live") as live:
        yield live


@contextmanager
def chromium(locale: str = "ja-JP") -> Iterator[Any]:
    """A fresh Chromium page (Debian's chromium, never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        unavailable("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            unavailable(f"chromium does not start: {exc}")
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
        page = context.new_page()
        page.set_default_timeout(15000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def browser_log_in(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Log ``page`` in as ``username`` through the log-in form (any earlier session dropped)."""
    page.context.clear_cookies()
    page.goto(base_url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with chromium("ja-JP") as page:
        yield page


def seed_sample(sm: sessionmaker[DbSession], site: str, now: datetime) -> None:
    """A little of everything (door, group with a window, taps, stays, a node, an alarm) so
    screenshots show real pages. Rights go through the audited services."""
    from dashboard import services
    from dashboard.models import Anomaly, DoorAccess, Node, Presence

    with sm.begin() as db:
        services.create_door(db, "seed", {"id": "server-room", "name": "サーバー室"}, now=now)
        services.create_group(db, "seed", {
            "id": "staff", "name": "担当者", "doors": ["server-room"],
            "windows": [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "20:00"}],
        }, now=now)
        services.create_person(db, "seed", {"id": "p7", "name": "佐藤 花子",
                                            "groups": ["staff"]}, now=now)
        for i in range(12):
            db.add(DoorAccess(node="gw1", seq=1000 + i, ts=now - timedelta(minutes=20 * i),
                              door="server-room", direction="in" if i % 2 else "out",
                              granted=i != 3, reason="outside_schedule" if i == 3 else None,
                              person_id="p7", uid="0A0B0C0E", reader="door-in"))
        db.add(Presence(person_id="p7", door="server-room",
                        entered_at=now - timedelta(minutes=40), left_at=None))
        db.add(Node(name="gw1", site=site, public_key="A" * 43, key_status="approved",
                    roles="door_gateway,print_station",
                    first_seen_at=now, state="online", last_seen_at=now, clock_state="synced",
                    policy_version=1, contiguous_seq=1011, max_seq=1011, events_stored=1011,
                    health={}))
        db.add(Anomaly(kind="door_held_open", severity="warning", subject="server-room",
                       detail={}, dedupe_key="door_held_open:seed", count=1, state="open",
                       first_seen_at=now, last_seen_at=now))
