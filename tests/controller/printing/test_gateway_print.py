"""Print release end to end: a tap at the printer's reader (real pcscd, virtual card) releases
only the tapper's held jobs on a real cupsd, and the events reach the broker signed."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from controller.gateway import Gateway
from controller.policy import DoorRule, Group, Person, Policy
from controller.printing.cups_adapter import CupsAdapter
from readers.pcsc import PcscReaders
from readers.pcscd_host import PcscdHost
from readers.virtual import VirtualCard
from tests.controller.gateway_kit import (
    ALICE_UID,
    BOB_UID,
    MALLORY_UID,
    SITE,
    EventCollector,
    make_kit,
)
from tests.support import unavailable
from tests.support.cupsd import Cupsd
from tests.support.mosquitto import Broker
from tests.support.pcscd import start_pcscd

pytestmark = pytest.mark.integration
_names = itertools.count(1)


def _policy(printer: str, *, alice_verified: bool = False) -> Policy:
    return Policy(
        version=1, issued_at=datetime(2026, 11, 1, tzinfo=UTC), site=SITE,
        people=[
            Person(id="alice", name="Alice", cards=[ALICE_UID], groups=["printing"],
                   cups_users=["alice"], verified_cards=[ALICE_UID] if alice_verified else []),
            Person(id="bob", name="Bob", cards=[BOB_UID], groups=["door-only"],
                   cups_users=["bob"]),
        ],
        groups=[Group(id="printing", name="Printing", doors=["server-room"], printers=[printer]),
                Group(id="door-only", name="Door only", doors=["server-room"])],
        doors=[DoorRule(id="server-room", name="Server room")],
        printers=[printer],
    )


@dataclass
class PrintRoom:
    cupsd: Cupsd
    hold: str
    pcscd: PcscdHost
    collector: EventCollector

    def tap(self, uid: str) -> None:
        VirtualCard(port=self.pcscd.port, uid=bytes.fromhex(uid)).tap()

    def waiting(self) -> set[int]:
        adapter = CupsAdapter(self.cupsd.host, self.cupsd.port, state_dir=self.cupsd.state)
        return {j.job_id for j in adapter.waiting_jobs(self.hold)}


@pytest.fixture
def room(request: pytest.FixtureRequest, tmp_path: Path, broker: Broker,
         cupsd: Cupsd) -> Iterator[PrintRoom]:
    """``request.param`` (indirect) True: alice's card is enrolled verified."""
    if os.geteuid() != 0:
        unavailable("the private cupsd and libcups' Local root certificate need root")
    hold, release = cupsd.add_room_printer(f"gwroom{next(_names)}")
    host = start_pcscd(tmp_path)
    host.use_in_this_process()
    kit = make_kit(
        tmp_path / "gw", mqtt_port=broker.port,
        policy=_policy(hold, alice_verified=getattr(request, "param", False)),
        bindings=[{"name": "Virtual PCD 00 00", "role": "printer", "printer": hold},
                  {"name": "Virtual PCD 00 01", "role": "door_in", "door": "server-room"}],
        printing={"printers": [hold], "release_queues": {hold: release},
                  "cups_host": cupsd.host, "cups_port": cupsd.port,
                  "cups_state_dir": str(cupsd.state)},
    )
    collector = EventCollector(broker.port).start()
    gateway = Gateway(kit.config, reader=PcscReaders(), pin_factory=MockFactory())
    gateway.start()
    try:
        collector.wait_for(lambda e: e.kind == "reader.connected", timeout=15)
        yield PrintRoom(cupsd, hold, host, collector)
    finally:
        gateway.stop()
        collector.stop()
        host.stop()


def test_only_the_tappers_jobs_print(room: PrintRoom) -> None:
    mine = [room.cupsd.submit("alice", room.hold, title="payroll.pdf"),
            room.cupsd.submit("alice", room.hold, title="bonus.pdf", hold="no-hold")]
    theirs = room.cupsd.submit("bob", room.hold, title="bob.pdf")
    assert {*mine, theirs} <= room.waiting(), "every new job is held, even a no-hold one"
    room.tap(ALICE_UID)
    released = room.collector.wait_for(lambda e: e.kind == "print.release", timeout=30)
    assert sorted(released.data["job_ids"]) == sorted(mine)
    assert released.data["person_id"] == "alice"
    assert "payroll" not in str(released.data), "titles are redacted by default"
    waiting = room.waiting()
    assert theirs in waiting and not set(mine) & waiting


def test_no_right_and_unknown_card_release_nothing(room: PrintRoom) -> None:
    job = room.cupsd.submit("bob", room.hold)
    room.tap(BOB_UID)
    denied = room.collector.wait_for(lambda e: e.kind == "print.denied", timeout=30)
    assert (denied.data["person_id"], denied.data["reason"]) == ("bob", "no_right")
    mark = room.collector.mark()
    room.tap(MALLORY_UID)
    unknown = room.collector.wait_for(
        lambda e: e.kind == "print.denied" and room.collector.arrivals.index(e) >= mark,
        timeout=30,
    )
    assert (unknown.data["person_id"], unknown.data["reason"]) == (None, "unknown_card")
    assert job in room.waiting()


@pytest.mark.parametrize("room", [True], indirect=True)
def test_a_copy_of_a_verified_card_releases_nothing(room: PrintRoom) -> None:
    """alice's card is enrolled verified; her UID presented without the key (a UID-only copy)
    releases none of her jobs."""
    job = room.cupsd.submit("alice", room.hold, title="payroll.pdf")
    room.tap(ALICE_UID)
    denied = room.collector.wait_for(lambda e: e.kind == "print.denied", timeout=30)
    assert (denied.data["person_id"], denied.data["reason"]) == ("alice", "no_right")
    assert job in room.waiting()
