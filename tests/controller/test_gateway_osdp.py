"""The gateway with an OSDP reader end to end: libosdp's PD on a pty -> secure channel ->
gateway decision -> relay, LED and buzzer -> signed events on a real Mosquitto."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import osdp
import pytest
from gpiozero.pins.mock import MockFactory

from controller.adapters import build_reader
from controller.config import ConfigError, parse_config
from controller.envelope import verify_signature
from controller.gateway import Gateway
from controller.keys import load_private
from readers.base import ReaderError
from tests.controller.gateway_kit import (
    ALICE_UID,
    DOOR,
    MALLORY_UID,
    EventCollector,
    GatewayKit,
    make_kit,
)
from tests.support.mosquitto import Broker
from tests.support.osdp_pd import PtyLine, VirtualOsdpReader, write_key

pytestmark = pytest.mark.integration

RELAY_PIN = 17
READER = "osdp-in"


@dataclass
class OsdpRoom:
    kit: GatewayKit
    gateway: Gateway
    pins: MockFactory
    collector: EventCollector
    pd: VirtualOsdpReader

    def relay_ever_energised(self) -> bool:
        """Once the tap being decided is done: door.access is journaled (and may reach the
        broker) before the relay moves, and the gateway holds its lock until it has."""
        with self.gateway._lock:
            return any(s.state for s in self.pins.pin(RELAY_PIN).states)


def _binding(line: PtyLine, key_file: Path) -> dict[str, object]:
    return {"name": READER, "kind": "osdp", "role": "door_in", "door": DOOR,
            "port": line.port, "address": 101, "key_file": str(key_file)}


def _room(tmp_path: Path, broker: Broker, pd_key: bytes | None, *,
          gateway_key: bytes) -> Iterator[OsdpRoom]:
    line = PtyLine()
    key_file = write_key(tmp_path / "reader.key", gateway_key)
    kit = make_kit(tmp_path / "gw", mqtt_port=broker.port, bindings=[_binding(line, key_file)])
    pd = VirtualOsdpReader(line, scbk=pd_key).start()
    pins = MockFactory()
    collector = EventCollector(broker.port).start()
    gateway = Gateway(kit.config, reader=build_reader(kit.config), pin_factory=pins)
    gateway.start()
    try:
        yield OsdpRoom(kit, gateway, pins, collector, pd)
    finally:
        gateway.stop()
        collector.stop()
        pd.stop()
        line.close()


@pytest.fixture
def room(tmp_path: Path, broker: Broker) -> Iterator[OsdpRoom]:
    key = os.urandom(16)
    yield from _room(tmp_path, broker, key, gateway_key=key)


def test_osdp_tap_opens_the_door_and_the_reader_shows_it(room: OsdpRoom) -> None:
    up = room.collector.wait_for(lambda e: e.kind == "reader.connected", timeout=20)
    assert up.data["reader"] == READER and "secure channel" in up.data["detail"]
    assert not room.relay_ever_energised()
    mark = len(room.pd.commands)
    room.pd.tap(ALICE_UID)
    event = room.collector.wait_for(lambda e: e.kind == "door.access")
    assert (event.data["granted"], event.data["person_id"], event.data["reader"]) == (
        True, "alice", READER)
    verify_signature(event, load_private(room.kit.config.key_file).public_key())
    assert room.relay_ever_energised()
    led = room.pd.wait_command(lambda c: c["command"] == osdp.Command.LED, after=mark)
    assert led["on_color"] == osdp.CommandLEDColor.Green

    mark = len(room.pd.commands)
    room.pd.tap(MALLORY_UID)
    denied = room.collector.wait_for(lambda e: e.kind == "door.access" and not e.data["granted"])
    assert denied.data["reason"] == "unknown_card"
    room.pd.wait_command(lambda c: c["command"] == osdp.Command.Buzzer and c["rep_count"] == 3,
                         after=mark)
    assert room.pd.led_colors(after=mark) == [osdp.CommandLEDColor.Red]


def test_osdp_tamper_and_power_reports_are_signed_events(room: OsdpRoom) -> None:
    room.collector.wait_for(lambda e: e.kind == "reader.connected", timeout=20)
    room.pd.local_status(tamper=True, power_failed=True)
    tamper = room.collector.wait_for(lambda e: e.kind == "reader.tamper")
    assert tamper.data == {"reader": READER, "active": True, "detail": "OSDP local status"}
    power = room.collector.wait_for(lambda e: e.kind == "reader.power")
    assert power.data["failed"] is True
    assert f"{READER}:tamper" in room.gateway.health()["reader_alarms"]


def test_osdp_reader_with_another_key_is_refused_and_opens_nothing(
    tmp_path: Path, broker: Broker
) -> None:
    for room in _room(tmp_path, broker, os.urandom(16), gateway_key=os.urandom(16)):
        refused = room.collector.wait_for(lambda e: e.kind == "reader.secure_refused",
                                          timeout=20)
        assert refused.data["reader"] == READER and refused.data["active"] is True
        room.pd.tap(ALICE_UID)
        room.collector.wait_for(lambda e: e.kind == "reader.disconnected", timeout=20)
        assert not [e for e in room.collector.arrivals if e.kind == "door.access"]
        assert not room.relay_ever_energised()


def test_osdp_reader_config_is_checked_once(tmp_path: Path) -> None:
    kit = make_kit(tmp_path / "gw", mqtt_port=1883)
    data = {"node": {"name": "gw1", "site": "hq"}, "policy": {"trusted_keys": ["a.pub"]},
            "doors": [{"id": DOOR, "relay_pin": 17}],
            "readers": {"bindings": [{"name": READER, "kind": "osdp", "role": "door_in",
                                      "door": DOOR, "port": "/dev/ttyUSB0"}]}}
    with pytest.raises(ConfigError, match="needs address, key_file"):
        parse_config(data, base=tmp_path)
    data["readers"]["bindings"] = [{"name": "ACS*", "role": "door_in", "door": DOOR,  # type: ignore[index]
                                    "address": 3}]
    with pytest.raises(ConfigError, match="takes no address"):
        parse_config(data, base=tmp_path)
    two = [{"name": f"r{i}", "kind": "osdp", "role": "door_in", "door": DOOR,
            "port": "/dev/ttyUSB0", "address": i, "key_file": "k"} for i in (1, 2)]
    data["readers"]["bindings"] = two  # type: ignore[index]
    assert len(parse_config(data, base=tmp_path).readers.bindings) == 2  # multidrop: one line
    two[1]["address"] = 1
    with pytest.raises(ConfigError, match="'r1' and 'r2' both have address 1 on /dev/ttyUSB0"):
        parse_config(data, base=tmp_path)
    two[1].update(address=2, baud=19200)
    with pytest.raises(ConfigError, match="one line has one baud rate"):
        parse_config(data, base=tmp_path)
    # a readable-by-all key file is refused when the readers are built, naming the file only
    key = os.urandom(16)
    key_file = write_key(tmp_path / "open.key", key)
    key_file.chmod(0o644)
    data["readers"]["bindings"] = [  # type: ignore[index]
        {"name": READER, "kind": "osdp", "role": "door_in", "door": DOOR,
         "port": "/dev/ttyUSB0", "address": 1, "key_file": "open.key"}]
    config = parse_config(data, base=tmp_path)
    assert config.readers.bindings[0].key_file == key_file
    with pytest.raises(ReaderError, match="open.key is readable by others") as info:
        build_reader(config)
    assert key.hex() not in str(info.value)
    assert kit.config.readers.bindings[0].kind == "pcsc"  # the default stays PC/SC


def test_cli_install_creates_the_key_file_and_gives_the_reader_its_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    line = PtyLine()
    pd = VirtualOsdpReader(line, scbk=None, install=True).start()  # fresh from the box
    try:
        key_file = tmp_path / "keys" / "door-in.key"
        key_file.parent.mkdir()
        kit = make_kit(tmp_path / "gw", mqtt_port=1883, bindings=[_binding(line, key_file)])
        run = subprocess.run(
            [sys.executable, "-m", "controller.cli", "card", "osdp-install", "-c",
             str(kit.config_path), "--reader", READER], cwd=tmp_path, capture_output=True,
            text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
        assert run.returncode == 0, run.stderr
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        key = bytes.fromhex(key_file.read_text())
        assert pd.scbk == key  # the reader took the key the file holds
        assert key.hex() not in run.stdout + run.stderr  # and it was never printed
        # a second run with the reader out of install mode: clear failure, exit 1
        pd.stop()
        pd = VirtualOsdpReader(line, scbk=os.urandom(16)).start()
        again = subprocess.run(
            [sys.executable, "-m", "controller.cli", "card", "osdp-install", "-c",
             str(kit.config_path), "--reader", READER, "--timeout", "3"], cwd=tmp_path,
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
        assert again.returncode == 1 and "install mode" in again.stderr
        assert bytes.fromhex(key_file.read_text()) == key  # the key file is kept as it was
    finally:
        pd.stop()
        line.close()


def test_cli_rekey_replaces_the_key_and_the_line_has_one_control_panel(tmp_path: Path) -> None:
    import subprocess
    import sys
    import threading

    from readers.osdp import OsdpReaders, OsdpReaderSpec

    line = PtyLine()
    old = os.urandom(16)
    key_file = write_key(tmp_path / "door-in.key", old)
    pd = VirtualOsdpReader(line, scbk=old).start()
    kit = make_kit(tmp_path / "gw", mqtt_port=1883, bindings=[_binding(line, key_file)])

    def secroom(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "controller.cli", "card", *args, "-c", str(kit.config_path),
             "--reader", READER, "--timeout", "20"], cwd=tmp_path, capture_output=True,
            text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})

    gateway_side = OsdpReaders([OsdpReaderSpec(name=READER, port=line.port, address=101,
                                               scbk=old)])

    class Sink:
        def __init__(self) -> None:
            self.up, self.refused = threading.Event(), threading.Event()

        def on_tap(self, _tap: object) -> None: ...

        def on_failure(self, _failure: object) -> None: ...

        def on_status(self, status: object) -> None:
            if getattr(status, "connected", False):
                self.up.set()

        def on_alarm(self, alarm: object) -> None:
            if getattr(alarm, "active", False):
                self.refused.set()

    try:
        sink = Sink()
        gateway_side.start(sink)  # the gateway holds the line
        assert sink.up.wait(20)
        busy = secroom("osdp-rekey")
        assert busy.returncode != 0 and "in use" in busy.stderr
        gateway_side.stop()

        run = secroom("osdp-rekey")
        assert run.returncode == 0, run.stderr
        new = bytes.fromhex(key_file.read_text())
        assert new != old and pd.scbk == new
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        assert not key_file.with_name(key_file.name + ".new").exists()
        assert new.hex() not in run.stdout + run.stderr and old.hex() not in run.stderr
        for key, ok in ((old, False), (new, True)):  # the old key is refused, the new one works
            sink = Sink()
            gateway_side = OsdpReaders([OsdpReaderSpec(name=READER, port=line.port,
                                                       address=101, scbk=key)])
            gateway_side.start(sink)
            assert (sink.up if ok else sink.refused).wait(20)
            assert not (sink.refused if ok else sink.up).is_set()
            gateway_side.stop()
    finally:
        gateway_side.stop()
        pd.stop()
        line.close()


def test_build_reader_picks_the_adapters_the_bindings_name(tmp_path: Path) -> None:
    from readers.multi import ReaderSet
    from readers.osdp import OsdpReaders
    from readers.pcsc import PcscReaders

    key_file = write_key(tmp_path / "k.key", os.urandom(16))
    osdp_in = {"name": READER, "kind": "osdp", "role": "door_in", "door": DOOR,
               "port": "/dev/ttyUSB0", "address": 1, "key_file": str(key_file)}
    pcsc_out = {"name": "Virtual PCD 00 01", "role": "door_out", "door": DOOR}
    only = make_kit(tmp_path / "a", mqtt_port=1883, bindings=[osdp_in])
    assert isinstance(build_reader(only.config), OsdpReaders)
    both = make_kit(tmp_path / "b", mqtt_port=1883, bindings=[osdp_in, pcsc_out])
    mixed = build_reader(both.config)
    assert isinstance(mixed, ReaderSet)
    assert [type(r) for r in mixed.readers] == [PcscReaders, OsdpReaders]
    assert both.config.binding_for(READER) is both.config.readers.bindings[0]


def test_two_person_door_shows_amber_for_the_first_card_then_green(
    tmp_path: Path, broker: Broker
) -> None:
    from controller.policy import DoorRule
    from tests.controller.gateway_kit import BOB_UID, make_policy

    policy = make_policy()
    policy = policy.model_copy(update={"doors": [DoorRule(id=DOOR, name="Server room",
                                                          two_person=True,
                                                          two_person_window_s=20)]})
    line = PtyLine()
    key = os.urandom(16)
    kit = make_kit(tmp_path / "gw", mqtt_port=broker.port, policy=policy,
                   bindings=[_binding(line, write_key(tmp_path / "reader.key", key))])
    pd = VirtualOsdpReader(line, scbk=key).start()
    pins = MockFactory()
    collector = EventCollector(broker.port).start()
    gateway = Gateway(kit.config, reader=build_reader(kit.config), pin_factory=pins)
    gateway.start()
    room = OsdpRoom(kit, gateway, pins, collector, pd)
    try:
        collector.wait_for(lambda e: e.kind == "reader.connected", timeout=20)
        mark = len(pd.commands)
        pd.tap(ALICE_UID)
        collector.wait_for(lambda e: e.kind == "door.two_person_pending")
        amber = pd.wait_command(lambda c: c["command"] == osdp.Command.LED, after=mark)
        assert (amber["on_color"], amber["timer_count"]) == (osdp.CommandLEDColor.Amber, 200)
        assert not room.relay_ever_energised()
        mark = len(pd.commands)
        pd.tap(BOB_UID)
        granted = collector.wait_for(lambda e: e.kind == "door.access" and e.data["granted"])
        assert granted.data["second_person_id"] in ("alice", "bob")
        green = pd.wait_command(lambda c: c["command"] == osdp.Command.LED, after=mark)
        assert green["on_color"] == osdp.CommandLEDColor.Green
        assert room.relay_ever_energised()
    finally:
        gateway.stop()
        collector.stop()
        pd.stop()
        line.close()
