"""The simulator panel exists only in demo mode, only for admins, with CSRF, and drives the
simulator it is given (a stateful fake room here; the fresh-clone test drives the real one)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from dashboard import i18n
from dashboard.app import create_app
from dashboard.auth import roles
from dashboard.simulator import DoorView, SimPerson, SimReader, SimulatorError, register
from tests.dashboard.web.conftest import TestClient, add_user, login, make_db, make_settings


class FakeRoom:
    def __init__(self) -> None:
        self.taps: list[tuple[str | None, int]] = []
        self.open = False
        self.plugged: list[str] = []

    def people(self) -> list[SimPerson]:
        return [SimPerson("s001", "佐藤 陽子", "payroll")]

    def readers(self) -> list[SimReader]:
        return [SimReader(0, "door in"), SimReader(1, "door out")]

    def tap(self, person_id: str | None, slot: int) -> str:
        self.taps.append((person_id, slot))
        return f"tapped {person_id}"

    def set_contact(self, open_: bool) -> str:
        self.open = open_
        return "ok"

    def press_rex(self) -> str:
        raise SimulatorError("exit button jammed")

    def door_views(self) -> list[DoorView]:
        return [DoorView(door="d1", relay=False, contact_open=self.open, green=False, red=False)]

    def usb_sticks(self) -> list[tuple[str, str]]:
        return [("USB-0001", "USB-0001 registered")]

    def usb_plugged(self) -> list[str]:
        return self.plugged

    def usb_plug(self, stick: str) -> str:
        self.plugged.append(stick)
        return "plugged"

    def usb_unplug(self, stick: str) -> str:
        self.plugged.remove(stick)
        return "unplugged"

    def print_unavailable(self) -> str | None:
        return "no cupsd here"

    def print_job(self, person_id: str, title: str) -> str:
        raise AssertionError("must not be called while unavailable")


@pytest.fixture
def restore_globals() -> Iterator[None]:
    with patch.dict(roles.ROLE_MATRIX), patch.dict(i18n.catalogue("en")), \
            patch.dict(i18n.catalogue("ja")):
        yield


def _app(tmp_path: Path, demo: bool) -> tuple[Any, Any]:
    settings = make_settings(tmp_path / "data", demo=demo)
    sm = make_db(settings)
    add_user(sm, settings, "admin1", "admin")
    add_user(sm, settings, "auditor1", "auditor")
    return create_app(settings, sessionmaker=sm), sm


def test_not_demo_mode_no_routes_and_register_refuses(tmp_path: Path,
                                                      restore_globals: None) -> None:
    app, _ = _app(tmp_path, demo=False)
    with pytest.raises(SimulatorError):
        register(app, FakeRoom())
    assert not any(getattr(r, "path", "").startswith("/simulator") for r in app.router.routes)
    with TestClient(app) as c:
        login(c, "admin1")
        assert c.get("/simulator").status_code == 404
        assert c.get("/simulator/state").status_code == 404
        assert "/simulator" not in c.get("/").text


def test_demo_mode_admin_drives_the_room(tmp_path: Path, restore_globals: None) -> None:
    app, _ = _app(tmp_path, demo=True)
    room = FakeRoom()
    register(app, room)
    with TestClient(app) as c:
        login(c, "admin1")
        page = c.get("/simulator")
        assert page.status_code == 200 and "佐藤 陽子" in page.text and "no cupsd here" in page.text
        assert 'href="/simulator"' in c.get("/").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        # without the CSRF token nothing happens
        assert c.post("/simulator/tap", data={"person": "s001", "reader": "1"}).status_code == 403
        assert room.taps == []
        r = c.post("/simulator/tap", data={"person": "s001", "reader": "1",
                                           "csrf_token": csrf.group(1)}, follow_redirects=False)
        assert r.status_code == 303 and room.taps == [("s001", 1)]
        r = c.post("/simulator/tap", data={"person": "", "reader": "0",
                                           "csrf_token": csrf.group(1)}, follow_redirects=False)
        assert room.taps[-1] == (None, 0)
        assert c.post("/simulator/tap", data={"person": "s999", "reader": "0",
                                              "csrf_token": csrf.group(1)}).status_code == 400
        assert c.post("/simulator/tap", data={"person": "s001", "reader": "7",
                                              "csrf_token": csrf.group(1)}).status_code == 400
        c.post("/simulator/door", data={"action": "open", "csrf_token": csrf.group(1)})
        assert c.get("/simulator/state").json()["doors"][0]["contact_open"] is True
        failed = c.post("/simulator/door", data={"action": "rex", "csrf_token": csrf.group(1)})
        assert "exit button jammed" in failed.text
        c.post("/simulator/usb", data={"stick": "USB-0001", "csrf_token": csrf.group(1)})
        assert c.get("/simulator/state").json()["usb_plugged"] == ["USB-0001"]
        printed = c.post("/simulator/print", data={"person": "s001", "csrf_token": csrf.group(1)})
        assert "no cupsd here" in printed.text
        assert c.get("/simulator/simulator.js").headers["content-type"].startswith(
            "text/javascript")
    with TestClient(app) as c:
        login(c, "auditor1")
        assert c.get("/simulator").status_code == 403
        assert c.get("/simulator/state").status_code == 403
