"""The demo's simulator panel: tap cards, move the door, press the exit button, plug sticks,
submit print jobs, and watch the door drawn live.

Shown only in demo mode. Nothing here is registered by :func:`dashboard.app.create_app`; the
demo calls :func:`register` on the app it builds, which refuses unless
``DashboardSettings.demo`` is true. Every route is admin-only (added to the role matrix at run
time, in the demo process only) and answers 404 if no simulator is attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

# route name -> roles; the demo adds these to the one role matrix when it registers the panel
ROUTE_NAMES: tuple[str, ...] = (
    "simulator.page", "simulator.state", "simulator.script", "simulator.style", "simulator.tap",
    "simulator.door", "simulator.usb", "simulator.print",
)
NAV_ITEM: tuple[str, str, str] = ("simulator.page", "/simulator", "nav.simulator")
MESSAGES: dict[str, dict[str, str]] = {
    "en": {"nav.simulator": "Simulator", "nav.group.demo": "Demo"},
    "ja": {"nav.simulator": "デモ操作", "nav.group.demo": "デモ"},
}


class SimulatorError(RuntimeError):
    """A simulated action could not be carried out; the message says why."""


@dataclass(frozen=True)
class SimPerson:
    id: str
    name: str
    group: str


@dataclass(frozen=True)
class SimReader:
    slot: int
    label: str


class DoorView(BaseModel):
    """What the panel draws: the strike relay, the contact, the LEDs (and the buzzer)."""

    model_config = ConfigDict(extra="forbid")
    door: str
    relay: bool
    contact_open: bool
    green: bool
    red: bool
    buzzer: bool = False


class SimState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    doors: list[DoorView]
    usb_plugged: list[str]
    last: str


class Simulator(Protocol):
    """What the panel needs from the running demo room (dashboard.demo implements it)."""

    def people(self) -> list[SimPerson]: ...
    def readers(self) -> list[SimReader]: ...
    def tap(self, person_id: str | None, slot: int) -> str: ...
    def set_contact(self, open_: bool) -> str: ...
    def press_rex(self) -> str: ...
    def door_views(self) -> list[DoorView]: ...
    def usb_sticks(self) -> list[tuple[str, str]]: ...
    def usb_plugged(self) -> list[str]: ...
    def usb_plug(self, stick: str) -> str: ...
    def usb_unplug(self, stick: str) -> str: ...
    def print_unavailable(self) -> str | None: ...
    def print_job(self, person_id: str, title: str) -> str: ...


def register(app: Any, simulator: Simulator) -> None:
    """Attach the panel to ``app`` (demo mode only): routes, role-matrix rows, nav link."""
    from dashboard import i18n
    from dashboard.auth import roles
    from dashboard.simulator.web import router
    from dashboard.web import deps

    if not app.state.settings.demo:
        raise SimulatorError("the simulator panel exists only in demo mode")
    app.state.simulator = simulator
    for name in ROUTE_NAMES:
        roles.ROLE_MATRIX[name] = roles.ADMINS
    # flat routes, as dashboard.app adds its routers (the middleware resolves names on them)
    app.router.routes[0:0] = list(router.routes)
    # this app's menu gains a group of its own; other apps in the process keep theirs
    app.state.nav_groups = (("nav.group.demo", (NAV_ITEM,)), *deps.NAV_GROUPS)
    for lang, messages in MESSAGES.items():
        i18n.catalogue(lang).update(messages)  # the cached catalogue; demo process only
