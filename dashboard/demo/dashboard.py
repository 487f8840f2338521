"""The demo's dashboard: database, admin user, the seed office entered through the audited
services (so the dashboard signs the policy the gateway runs), uvicorn on a free port, and
auto-approval of the demo gateway's key (an installer compares and approves it by hand)."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.keys import generate, load_private, public_b64
from controller.localbroker import free_port
from controller.mqtt import MqttSettings
from controller.policy import Policy
from dashboard.demo import seed

ACTOR = "demo-setup"


@dataclass
class DemoDashboard:
    url: str
    username: str
    password: str
    policy_public_key: Path
    sessionmaker: Any
    runtime: Any
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.stop()  # live streams end first: uvicorn would wait for them
        self.thread.join(10)
        self.runtime.stop()


def enter_office(sm: Any, office: Policy, now: datetime) -> None:
    """Doors, printers, groups, people and cards of the office's site, each an audited admin
    action."""
    from dashboard import services

    with sm.begin() as db:
        for door in office.doors:
            services.create_door(db, ACTOR, {"id": door.id, "name": door.name, "site": office.site,
                                             "two_person": door.two_person,
                                             "two_person_window_s": door.two_person_window_s,
                                             "anti_passback": door.anti_passback}, now=now)
        for printer in office.printers:
            services.create_printer(db, ACTOR, {"id": printer, "site": office.site,
                                                "name": seed.PRINTER_NAMES.get(printer, printer)},
                                    now=now)
        for group in office.groups:
            services.create_group(db, ACTOR, {
                "id": group.id, "name": group.name, "site": office.site, "doors": group.doors,
                "printers": group.printers, "on_holidays": group.on_holidays,
                "windows": [{"days": w.days, "start": w.start.strftime("%H:%M"),
                             "end": w.end.strftime("%H:%M")} for w in group.windows],
            }, now=now)
        for person in office.people:
            services.create_person(db, ACTOR, {
                "id": person.id, "name": person.name, "site": office.site,
                "active": person.active,
                "groups": person.groups, "cups_users": person.cups_users,
                "operator_ids": person.operator_ids,
            }, now=now)
            for uid in person.cards:
                services.enrol_card(db, ACTOR, person.id, uid, now=now)


def start_dashboard(
    data_dir: Path, *, site: str, broker_port: int, office: Policy,
    simulator: Any = None, history: Any = None,
) -> DemoDashboard:
    """``simulator``: attached as the demo-only simulator panel. ``history``: called with the
    sessionmaker and the settings before the runtime starts (the seeded month)."""
    import uvicorn

    from dashboard.app import create_app
    from dashboard.auth.service import AuthService
    from dashboard.db import make_engine, make_sessionmaker
    from dashboard.migrate import upgrade
    from dashboard.runtime import build_runtime
    from dashboard.settings import DashboardSettings
    from dashboard.web.serve import Server

    settings = DashboardSettings(data_dir=data_dir, site=site, demo=True,
                                 mqtt=MqttSettings(port=broker_port))
    data_dir.mkdir(parents=True, exist_ok=True)
    assert settings.policy_key_file is not None
    generate(settings.policy_key_file)
    upgrade(settings.database_url)
    sm = make_sessionmaker(make_engine(settings.database_url))
    now = datetime.now(UTC)
    password = secrets.token_urlsafe(12)
    with sm.begin() as db:
        AuthService(settings, sm).create_user(db, username="admin", role="admin",
                                              password=password, now=now,
                                              display_name="管理者")
    enter_office(sm, office, now)
    if history is not None:
        history(sm, settings)
    runtime = build_runtime(settings)
    app = create_app(settings, sessionmaker=runtime.sessionmaker, bus=runtime.bus)
    if simulator is not None:
        from dashboard.simulator import register

        register(app, simulator)
    runtime.start()
    port = free_port()
    server = Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                   lifespan="on", timeout_graceful_shutdown=1), runtime.bus)
    thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.05)
    return DemoDashboard(f"http://127.0.0.1:{port}", "admin", password,
                         settings.policy_key_file.with_name(settings.policy_key_file.name + ".pub"),
                         sm, runtime, server, thread)


def approve_when_announced(sm: Any, node: str, key_file: Path, stop: threading.Event,
                           roles: tuple[str, ...]) -> None:
    """Approve ``node`` for ``roles`` once it has announced exactly the key in ``key_file``."""
    from dashboard.models import Node
    from dashboard.services import approve_node

    expected = public_b64(load_private(key_file).public_key())
    while not stop.wait(0.2):
        with sm.begin() as db:
            row = db.get(Node, node)
            if row is None or row.public_key != expected:
                continue
            if row.key_status == "pending":
                approve_node(db, ACTOR, node, roles=roles, public_key=expected)
            break
    # The node's "asks to be enrolled" / "events before approval" anomalies are the enrolment
    # the demo just did: resolved with that reason (audited), once the resent events are in.
    if not stop.wait(3):
        resolve_enrolment(sm, node)


def resolve_enrolment(sm: Any, node: str) -> int:
    from sqlalchemy import select

    from dashboard.anomalies import resolve
    from dashboard.models import Anomaly

    done = 0
    with sm.begin() as db:
        for row in db.scalars(select(Anomaly).where(
                Anomaly.node == node, Anomaly.state == "open",
                Anomaly.kind.in_(("node_enrolment", "unapproved_node")))):
            resolve(db, ACTOR, row.id, "demo set-up: the node's key was compared and approved",
                    now=datetime.now(UTC))
            done += 1
    return done
