"""The demo room: starts and stops every part, and turns typed commands into card taps."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from controller.config import load_config
from controller.envelope import EnvelopeError, parse
from controller.gateway import Gateway
from controller.gpio import make_pin_factory
from controller.keys import generate, load_private
from controller.localbroker import BrokerUnavailable, LocalBroker
from controller.mqtt import MqttLink, MqttSettings
from controller.policy_slice import card_key_for
from dashboard.demo import history, seed, userns
from dashboard.demo.cups import CupsUnavailable, DemoCups
from dashboard.demo.dashboard import DemoDashboard, approve_when_announced, start_dashboard
from dashboard.demo.readers import (
    PRINTER_READER,
    RACK_READERS,
    CombinedReaders,
    rack_readers,
    tap_rack,
)
from dashboard.demo.usb import HOST as USB_HOST
from dashboard.demo.usb import DemoUsb, seed_media
from dashboard.simulator import Simulator, SimulatorError
from readers.base import ReaderError
from readers.pcsc import PcscReaders
from readers.pcscd_host import PcscdHost, free_port_pair
from readers.virtual import VirtualCard

RELAY_PIN, CONTACT_PIN, REX_PIN, GREEN_PIN, RED_PIN, BUZZER_PIN = 17, 27, 22, 5, 6, 13
RACK_RELAY_PIN, RACK_CONTACT_PIN = 23, 24  # hardware/PINMAP.md


class DemoUnavailable(RuntimeError):
    """A part of the demo cannot start here; the message says what to install."""


class DemoRoom:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.run_dir = workdir / "run"
        self.broker: LocalBroker | None = None
        self.pcscd: PcscdHost | None = None
        self.gateway: Gateway | None = None
        self.printer_link: MqttLink | None = None
        self.dashboard: DemoDashboard | None = None
        self._stopping = threading.Event()
        self.pins = make_pin_factory("mock")
        self.staff = {m.id: m for m in seed.staff()}
        self._print_lock = threading.Lock()
        self._printed: set[str] = set()
        self.history: dict[str, Any] = {}
        self.usb: Any = None  # the simulated USB host and its agent, once started
        self.cups: DemoCups | None = None
        self._cups_reason = "the demo's private CUPS has not started"

    # -- start / stop ---------------------------------------------------------------------
    def start(self, panel: Simulator | None = None) -> None:
        """Start every part; ``panel`` is what the dashboard's simulator page drives."""
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True)
        try:
            self.broker = LocalBroker(self.run_dir / "mosquitto")
            self.broker.start()
        except BrokerUnavailable as exc:
            raise DemoUnavailable(str(exc)) from exc
        try:
            userns.prepare(self.run_dir)
        except userns.UserNamespaceUnavailable as exc:
            raise DemoUnavailable(str(exc)) from exc
        try:
            self.pcscd = PcscdHost(self.run_dir / "pcscd", port=free_port_pair())
            self.pcscd.start()
        except ReaderError as exc:
            raise DemoUnavailable(f"virtual card reader: {exc}") from exc
        self.pcscd.use_in_this_process()
        try:
            cups = DemoCups()
            self.cups = cups  # stopped by stop() even if it fails half-way
            cups.start()
        except CupsUnavailable as exc:
            if self.cups is not None:
                self.cups.stop()
            self.cups, self._cups_reason = None, str(exc)
        self.dashboard = start_dashboard(self.run_dir / "dashboard", site=seed.SITE,
                                         broker_port=self.broker.port, office=seed.policy(),
                                         simulator=panel, history=self._seed)
        config_path = self._write_files()
        self._watch_events()
        config = load_config(config_path)
        self.rack = rack_readers()
        self.gateway = Gateway(config, reader=CombinedReaders(PcscReaders(), self.rack),
                               pin_factory=self.pins)
        self._enroller = threading.Thread(
            target=approve_when_announced, name="demo-enroller", daemon=True,
            args=(self.dashboard.sessionmaker, "gw1", config.key_file, self._stopping,
                  ("door_gateway", "print_station")),
        )
        self._enroller.start()
        self._start_usb()
        self.gateway.start()
        self.pins.pin(CONTACT_PIN).drive_low()  # the simulated doors start closed
        self.pins.pin(RACK_CONTACT_PIN).drive_low()
        self._wait_for_policy(self.gateway, timeout_s=30.0)

    @staticmethod
    def _wait_for_policy(gateway: Gateway, timeout_s: float) -> None:
        """Announce the demo only once the gateway runs the dashboard's signed policy: a tap
        before that is (rightly) denied with no_policy, which is no way to greet a new user."""
        deadline = time.monotonic() + timeout_s
        while gateway.policies.current is None:  # set on the broker's thread; nothing to await
            if time.monotonic() > deadline:
                raise DemoUnavailable(
                    f"the gateway received no signed policy from the dashboard in {timeout_s:g}s"
                )
            time.sleep(0.05)

    def _seed(self, sm: Any, _settings: Any) -> None:
        """The office's media ledger (and its month of history) before the runtime starts."""
        now = datetime.now(UTC)
        self._sticks = seed_media(sm, now)
        started = time.monotonic()
        counts = history.store(sm, history.build(now), now)
        self.history = {**counts, "seconds": round(time.monotonic() - started, 1)}
        from dashboard.demo.names import seed_names

        assert self.pcscd is not None
        door_in, door_out = self.pcscd.expected_reader_names()[:2]
        seed_names(sm, now, {door_in: "サーバールーム 入口リーダー",
                             door_out: "サーバールーム 出口リーダー"})

    def _start_usb(self) -> None:
        assert self.dashboard and self.broker
        usb = DemoUsb(self.run_dir / "usb-pc-01", self.dashboard.sessionmaker, self._sticks,
                      self.broker.port, self.dashboard.policy_public_key)
        usb.start()
        self.usb = usb
        threading.Thread(target=approve_when_announced, name="demo-enroller-usb", daemon=True,
                         args=(self.dashboard.sessionmaker, USB_HOST, usb.key_file,
                               self._stopping, ("host_agent",))).start()

    def stop(self) -> None:
        self._stopping.set()
        for name, part in (("gateway", self.gateway), ("usb agent", self.usb),
                           ("console", self.printer_link), ("dashboard", self.dashboard),
                           ("cupsd", self.cups), ("pcscd", self.pcscd), ("broker", self.broker)):
            if part is None:
                continue
            started = time.monotonic()
            part.stop()
            if time.monotonic() - started > 1.0:
                self.say(f"  ({name} took {time.monotonic() - started:.1f} s to stop)")

    def _write_files(self) -> Path:
        d = self.run_dir
        generate(d / "node.key")
        assert self.broker and self.pcscd and self.dashboard
        names = self.pcscd.expected_reader_names()
        config = {
            "node": {"name": "gw1", "site": seed.SITE, "data_dir": str(d), "clock": "auto"},
            "mqtt": {"host": "127.0.0.1", "port": self.broker.port},
            "gpio": {"backend": "mock"},
            "readers": {"backend": "pcsc", "bindings": [
                {"name": names[0], "role": "door_in", "door": seed.DOOR},
                {"name": names[1], "role": "door_out", "door": seed.DOOR},
                {"name": RACK_READERS[0], "role": "rack_a", "door": seed.RACK},
                {"name": RACK_READERS[1], "role": "rack_b", "door": seed.RACK},
            ]},
            "doors": [{"id": seed.DOOR, "relay_pin": RELAY_PIN, "contact_pin": CONTACT_PIN,
                       "rex_pin": REX_PIN, "led_green_pin": GREEN_PIN, "led_red_pin": RED_PIN,
                       "buzzer_pin": BUZZER_PIN, "unlock_s": 5.0, "held_open_s": 30.0},
                      {"id": seed.RACK, "relay_pin": RACK_RELAY_PIN,
                       "contact_pin": RACK_CONTACT_PIN, "unlock_s": 10.0, "held_open_s": 300.0}],
            # the dashboard signs and publishes the policy; the gateway trusts only its key
            "policy": {"trusted_keys": [str(self.dashboard.policy_public_key)]},
        }
        if self.cups is not None:
            config["printing"] = {"printers": [seed.PRINTER], "cups_host": "127.0.0.1",
                                  "cups_port": self.cups.port,
                                  "cups_state_dir": str(self.cups.state_dir)}
            config["readers"]["bindings"].append(  # type: ignore[index]
                {"name": PRINTER_READER, "role": "printer", "printer": seed.PRINTER})
        path = d / "gateway.toml"
        path.write_text(tomli_w.dumps(config))
        # the gateway's card key, as `secroom policy card-key` gives it to an installer
        signer_key = self.dashboard.policy_public_key.with_suffix("")  # policy.key
        card_key = card_key_for(load_private(signer_key), seed.SITE, "gw1")
        (d / "card.key").write_text(card_key.hex() + "\n")
        return path

    # -- what reaches the broker ------------------------------------------------------------
    def _watch_events(self) -> None:
        assert self.broker
        link = MqttLink(MqttSettings(port=self.broker.port), client_id="demo-printer")
        link.subscribe(f"secroom/v1/{seed.SITE}/+/events/#", self._print_event)
        link.start()
        self.printer_link = link

    def _print_event(self, _topic: str, payload: bytes) -> None:
        try:
            event = parse(payload)
        except EnvelopeError as exc:
            self.say(f"  !! malformed event on the broker: {exc}")
            return
        if event.id in self._printed:
            return  # a re-delivery (resend after an ack gap): shown once
        self._printed.add(event.id)
        local = datetime.fromisoformat(event.ts.replace("Z", "+00:00")).astimezone()
        data = dict(event.data)
        person = self.staff.get(str(data.get("person_id")))
        if person:
            data["person"] = person.name
        self.say(f"  {local:%H:%M:%S} {event.node}#{event.seq} {event.kind} "
                 f"{json.dumps(data, ensure_ascii=False, sort_keys=True)}")

    def say(self, text: str) -> None:
        with self._print_lock:
            print(text, flush=True)

    # -- simulated hardware -----------------------------------------------------------------
    def reader_labels(self) -> list[tuple[int, str]]:
        return [(0, f"{seed.DOOR} in (入室)"), (1, f"{seed.DOOR} out (退室)"),
                (2, f"{seed.RACK} A (二人認証, in-process)"),
                (3, f"{seed.RACK} B (二人認証, in-process)"),
                *([(4, f"{seed.PRINTER} (印刷解放, in-process)")] if self.cups else [])]

    def tap(self, person_id: str, slot: int = 0) -> str:
        """Tap ``person_id``'s card (an unknown one if there is no such person); its UID."""
        assert self.pcscd
        member = self.staff.get(person_id)
        uid = bytes.fromhex(member.uid) if member else os.urandom(7)
        if slot >= 2:
            tap_rack(self.rack, uid.hex().upper(), slot - 2)  # 2, 3: rack; 4: printer
        else:
            VirtualCard(port=self.pcscd.port + slot, uid=uid).tap()
        return uid.hex().upper()

    def set_contact(self, open_: bool) -> None:
        pin = self.pins.pin(CONTACT_PIN)
        (pin.drive_high if open_ else pin.drive_low)()

    def press_rex(self) -> None:
        pin = self.pins.pin(REX_PIN)
        pin.drive_low()
        pin.drive_high()

    def door_states(self) -> list[dict[str, Any]]:
        rack = self.gateway.doors.get(seed.RACK) if self.gateway else None
        return [{"door": seed.DOOR, **self.door_state(),
                 "buzzer": bool(self.pins.pin(BUZZER_PIN).state)},
                {"door": seed.RACK, "relay": bool(rack and rack.relay_energised),
                 "contact_open": bool(rack and rack.contact_open), "green": False, "red": False}]

    def print_unavailable(self) -> str | None:
        return None if self.cups is not None else self._cups_reason

    def submit_print(self, person_id: str, title: str) -> str:
        if self.cups is None:
            raise SimulatorError(self._cups_reason)
        member = self.staff[person_id]
        try:
            job = self.cups.submit(member.cups_user, title)
        except CupsUnavailable as exc:
            raise SimulatorError(str(exc)) from exc
        return (f"job {job} from {member.name} ({member.cups_user}) is held on {seed.PRINTER}: "
                "tap their card at the printer's reader to release it")

    def door_state(self) -> dict[str, Any]:
        return {
            "relay": bool(self.pins.pin(RELAY_PIN).state),
            "contact_open": self.gateway.doors[seed.DOOR].contact_open if self.gateway else False,
            "green": bool(self.pins.pin(GREEN_PIN).state),
            "red": bool(self.pins.pin(RED_PIN).state),
        }

    # -- console ----------------------------------------------------------------------------
    def print_banner(self) -> None:
        assert self.broker and self.dashboard
        self.say(f"secroom demo running (site {seed.SITE}, broker 127.0.0.1:{self.broker.port})")
        self.say(f"  dashboard: {self.dashboard.url}/  user: {self.dashboard.username}  "
                 f"password: {self.dashboard.password}")
        if self.history:
            self.say(f"  a month of history: {self.history['events']} signed events ingested, "
                     f"{self.history['numlog_rows']} number-system log rows imported "
                     f"({self.history['seconds']} s)")
        self.say("people: " + ", ".join(f"{m.id} {m.name}" for m in list(self.staff.values())[:6])
                 + ", ... (type 'people' for all)")
        self.say("type 'help' for commands; Ctrl-C stops everything")

    HELP = (
        "  in ID        tap ID's card at the door's entry reader (e.g. in s001)\n"
        "  out ID       tap at the exit reader\n"
        "  rack ID      tap at the rack's reader (two different IT staff within 15 s: s021 s022)\n"
        "  stranger     tap an unknown card\n"
        "  open/close   open or close the door (contact)\n"
        "  rex          press the request-to-exit button\n"
        "  door         show relay, contact and LEDs\n"
        "  people       list the staff\n"
        "  quit         stop the demo"
    )

    def command_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                line = input("secroom> ").strip()
            except EOFError:
                return
            if not line:
                continue
            cmd, *rest = line.split()
            try:
                if cmd in ("quit", "exit"):
                    return
                if cmd == "help":
                    self.say(self.HELP)
                elif cmd in ("in", "out", "rack") and rest:
                    self.tap(rest[0], slot={"in": 0, "out": 1, "rack": 2}[cmd])
                elif cmd == "stranger":
                    self.tap("nobody")
                elif cmd in ("open", "close"):
                    self.set_contact(cmd == "open")
                elif cmd == "rex":
                    self.press_rex()
                elif cmd == "door":
                    self.say(f"  {self.door_state()}")
                elif cmd == "people":
                    for m in self.staff.values():
                        self.say(f"  {m.id} {m.name} ({m.group})")
                else:
                    self.say("unknown command; type 'help'")
            except ReaderError as exc:
                self.say(f"  tap failed: {exc}")
