"""The demo room seen through the dashboard's simulator panel (dashboard.simulator.Simulator).

Each method drives the simulated hardware the console commands drive (virtual cards at the vpcd
slots, gpiozero MockFactory pins, the simulated USB host, the private CUPS queue) and returns a
one-line account of what was done; the events themselves travel the real path (gateway or agent
journal -> broker -> dashboard ingest).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboard.simulator import DoorView, SimPerson, SimReader, SimulatorError
from readers.base import ReaderError

if TYPE_CHECKING:
    from dashboard.demo.room import DemoRoom


class RoomSimulator:
    def __init__(self, room: DemoRoom) -> None:
        self.room = room

    def people(self) -> list[SimPerson]:
        return [SimPerson(m.id, m.name, m.group) for m in self.room.staff.values()]

    def readers(self) -> list[SimReader]:
        return [SimReader(slot, label) for slot, label in self.room.reader_labels()]

    def tap(self, person_id: str | None, slot: int) -> str:
        try:
            uid = self.room.tap(person_id or "nobody", slot=slot)
        except ReaderError as exc:
            raise SimulatorError(f"tap failed: {exc}") from exc
        who = self.room.staff[person_id].name if person_id in self.room.staff else "unknown card"
        return f"tapped {who} ({uid}) at {dict(self.room.reader_labels())[slot]}"

    def set_contact(self, open_: bool) -> str:
        self.room.set_contact(open_)
        return "door opened" if open_ else "door closed"

    def press_rex(self) -> str:
        self.room.press_rex()
        return "exit button pressed"

    def door_views(self) -> list[DoorView]:
        return [DoorView(**state) for state in self.room.door_states()]

    def usb_sticks(self) -> list[tuple[str, str]]:
        return self.room.usb.sticks() if self.room.usb else []

    def usb_plugged(self) -> list[str]:
        return self.room.usb.plugged() if self.room.usb else []

    def usb_plug(self, stick: str) -> str:
        if self.room.usb is None:
            raise SimulatorError("the USB agent is not running in this demo")
        return self.room.usb.plug(stick)

    def usb_unplug(self, stick: str) -> str:
        if self.room.usb is None:
            raise SimulatorError("the USB agent is not running in this demo")
        return self.room.usb.unplug(stick)

    def print_unavailable(self) -> str | None:
        return self.room.print_unavailable()

    def print_job(self, person_id: str, title: str) -> str:
        return self.room.submit_print(person_id, title)
