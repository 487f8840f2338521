"""The demo office as a seeded database and a served dashboard, without the room's live parts
(no broker, pcscd or CUPS): the office, its media ledger, a month of history through the real
ingest and correlation, and one dashboard user per role.

The crawl test, the browser workflows and the README's screenshot script
(``hardware/screenshots/regenerate.py``) all read this same office. ``World.tap`` stores a door
tap through the real ingest (signed by the history gateway) and publishes what the ingest
publishes, so live pages update as they do in the full demo.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dashboard.demo import history, seed

# one dashboard user per role (the demo's admin is "admin"), and their display names
DISPLAY = {"admin": "管理者 山本", "anzen": "安全管理 井上", "backup": "バックアップ担当 木村",
           "kansa": "監査 清水"}
ROLE_USERS: dict[str, str] = {
    "admin": "admin",
    "security_admin": "anzen",
    "backup_operator": "backup",
    "auditor": "kansa",
}


@dataclass
class World:
    settings: Any
    sessionmaker: Any
    now: datetime
    password: str
    month: history.Month
    users: dict[str, str] = field(default_factory=lambda: dict(ROLE_USERS))
    bus: Any = None

    def tap(self, person_id: str, direction: str = "in", *, granted: bool = True,
            reason: str | None = None, at: datetime | None = None) -> dict[str, Any]:
        """A card tap at the server-room door, signed by the history gateway, stored through
        the real ingest; the ingest's bus messages are published after the commit."""
        who = next(s for s in seed.staff() if s.id == person_id)
        return self.event("door.access", {
            "card": who.uid, "direction": direction, "door": seed.DOOR, "granted": granted,
            "person_id": who.id, "policy_version": 1, "reader": f"{seed.DOOR}-{direction}",
            "reason": reason, "second_person_id": None,
        }, at=at)

    def event(self, kind: str, data: dict[str, Any], *, at: datetime | None = None
              ) -> dict[str, Any]:
        """Any event of the history gateway (e.g. door.forced), through the real ingest."""
        from dashboard.ingest.core import IngestCore

        signer = self.month.signers[history.GW]
        ts = at or datetime.now(UTC)
        ev = signer.event(kind, ts, data)
        core = IngestCore(site=seed.SITE)
        with self.sessionmaker.begin() as db:
            result = core.process(db, [(ev.topic(), ev.to_bytes())], ts)
        if self.bus is not None:
            for topic, message in result.messages:
                self.bus.publish(topic, message)
        return {"node": history.GW, "seq": ev.seq}


def build(data_dir: Path, *, password: str, now: datetime | None = None) -> World:
    """Migrate a fresh SQLite database under ``data_dir`` and seed the office into it."""
    from dashboard.auth.service import AuthService
    from dashboard.db import make_engine, make_sessionmaker
    from dashboard.demo.dashboard import enter_office
    from dashboard.demo.usb import seed_media
    from dashboard.migrate import upgrade
    from dashboard.settings import DashboardSettings

    now = now or datetime.now(UTC)
    settings = DashboardSettings(data_dir=data_dir, site=seed.SITE)
    data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    sm = make_sessionmaker(make_engine(settings.database_url))
    auth = AuthService(settings, sm)
    with sm.begin() as db:
        for role, username in ROLE_USERS.items():
            auth.create_user(db, username=username, role=role, password=password, now=now,
                             display_name=DISPLAY[username])
    enter_office(sm, seed.policy(now=now), now)
    seed_media(sm, now)
    month = history.build(now)
    history.store(sm, month, now)
    _extras(sm, now)
    return World(settings, sm, now, password, month)


def _extras(sm: Any, now: datetime) -> None:
    """What the console shows beyond the history (display names), when this version has it."""
    try:
        from dashboard.demo.names import seed_names
    except ImportError:  # an older dashboard without display names
        return
    seed_names(sm, now)


@dataclass
class Served:
    base_url: str
    world: World
    app: Any


@contextmanager
def serve(world: World, *, correlate: bool = True) -> Iterator[Served]:
    """The dashboard over ``world`` on a free loopback port (uvicorn in a thread), with an
    in-process bus and, with ``correlate``, the correlation listener feeding the review queue."""
    import uvicorn

    from controller.localbroker import free_port
    from dashboard.app import create_app
    from dashboard.bus import Bus

    bus = Bus()
    world.bus = bus
    app = create_app(world.settings, sessionmaker=world.sessionmaker, bus=bus)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    if correlate:
        from dashboard.correlation.listener import CorrelationListener

        listener = CorrelationListener(bus, world.sessionmaker, lambda: datetime.now(UTC),
                                       tick_s=3600)
        _wire_review(listener, bus)
        threads.append(threading.Thread(target=listener.run, args=(stop,), daemon=True,
                                        name="world-correlation"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=1))
    threads.append(threading.Thread(target=server.run, daemon=True, name="world-uvicorn"))
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", world, app)
    finally:
        bus.close()
        stop.set()
        server.should_exit = True
        for t in threads:
            t.join(10)


def _wire_review(listener: Any, bus: Any) -> None:
    """New review items the correlation raises go to the live bus (when this version can)."""
    try:
        from dashboard.correlation.listener import publish_new_items
    except ImportError:
        return
    publish_new_items(listener, bus)


def day_start(now: datetime, days_ago: int = 0) -> datetime:
    local = now.astimezone(history.ZONE) - timedelta(days=days_ago)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)
