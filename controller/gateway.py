"""The gateway node: card readers -> access decision -> door relay, with every step journaled.

The gateway is the readers' TapSink. A tap is decided by the pure ``controller.access.decide``
under one lock (the access state: presence for anti-passback, pending two-person pairs), the
``door.access`` event is committed to the journal, and only then is the relay energised: an
access the auditor cannot see never happens. If the journal cannot be written (disk full) a
granted tap is refused (the door's ``unrecorded_access = "deny"``, the default: fail closed) or,
where the site chose ``"open"``, still opens the door; either way the failure is counted and
reported in the node's health, which the dashboard raises as an anomaly.

Cards that prove themselves: a reader with a ``verifier`` (readers.verify.select.CardVerifier,
which ``controller.adapters`` gives every PC/SC reader) checks each card while it is connected;
the gateway hands it the site card keys of every policy it applies (sealed in the slice,
opened with the node's card key) and decides on the tap's credential (controller.access).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from controller.access import (
    AccessRequest,
    AccessState,
    Decision,
    Denial,
    Direction,
    Strength,
    access_events,
    credential_holds,
    decide,
    may_print,
    person_for_card,
)
from controller.adapters import build_cameras, build_cups
from controller.card_enrol import CardEnrolDesk
from controller.clock import ClockStateSource
from controller.config import GatewayConfig, ReaderBinding
from controller.door import Door, DoorError
from controller.envelope import Event, now_utc, policy_topic
from controller.events import (
    ReaderConnected,
    ReaderDisconnected,
    ReaderPower,
    ReaderReadFailed,
    ReaderSecureRefused,
    ReaderTamper,
    ReaderUnboundTap,
)
from controller.journal import JournalError
from controller.keys import derive_secret, load_private
from controller.policy import MAX_POLICY_BYTES
from controller.policy_slice import NodeScope
from controller.policy_store import store_for
from controller.printing.events import PRINT_DENIED, PrintDeniedPayload
from controller.printing.service import PrintRelease
from controller.printing.types import CupsLike, PrintError
from controller.runtime import NodeRuntime
from readers.base import (
    AlarmKind,
    CardReader,
    CardTap,
    FailureReason,
    ReaderAlarm,
    ReaderRole,
    ReaderStatus,
    ReadFailure,
    Signal,
)

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 15.0


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        reader: CardReader,
        pin_factory: Any,
        clock: Callable[[], datetime] = now_utc,
        cups: CupsLike | None = None,
    ) -> None:
        self.config = config
        self.reader = reader
        self.clock = clock
        self.clock_state = ClockStateSource(config.node.clock)
        self.runtime = NodeRuntime(
            config.runtime_settings(), clock=clock, clock_state=self.clock_state
        )
        # this node's slice: its doors and printers (declared in its state message)
        scope = NodeScope(doors=frozenset(d.id for d in config.doors),
                          printers=frozenset(config.printing.printers if config.printing else ()))
        self.policies = store_for(config, scope, emit=self._emit_quiet, clock=clock,
                                  on_change=lambda _policy: self._on_policy_change(),
                                  runtime=self.runtime)
        self._honour_expiry = config.policy.when_expired == "closed"
        self.doors: dict[str, Door] = {}
        self._pin_factory = pin_factory
        self._state = AccessState()
        self._lock = threading.Lock()
        self._deferred = threading.local()  # .stills: camera triggers of the tap in progress
        self._stop = threading.Event()
        self._health_thread: threading.Thread | None = None
        self.printing: PrintRelease | None = None
        self._print_worker: ThreadPoolExecutor | None = None
        if config.printing is not None:
            self.printing = PrintRelease(
                config.printing,
                cups=cups or build_cups(config.printing),
                emit=self._emit_quiet,
                clock=clock,
                check_right=self._print_right,
                is_present=self._is_present,
                title_key=derive_secret(load_private(config.key_file), "print-title"),
            )
        # stills of watched events: queued by _emit_quiet, taken on the camera's own thread
        self.cameras = (build_cameras(config, load_private(config.key_file), self._emit_event)
                        if config.cameras is not None else None)
        self.readers_connected: dict[str, bool] = {}
        self.reader_alarms: dict[tuple[str, str], bool] = {}  # (reader, alarm kind) -> active
        self.counters: dict[str, int] = {"taps": 0, "granted": 0, "denied": 0, "read_failures": 0,
                                         "journal_failures": 0, "unbound_taps": 0,
                                         "denied_unrecorded": 0, "grant_failed": 0}
        # door taps by (door, "granted" | "denied", reason): the metrics' decisions by result
        self.decisions: Counter[tuple[str, str, str]] = Counter()
        # blank cards personalised at a reader on the dashboard's signed command
        self.enrol = CardEnrolDesk(self.runtime, getattr(reader, "verifier", None),
                                   self._pcsc_reader,
                                   emit=self._emit_quiet, counters=self.counters,
                                   clock=clock, clock_state=self.clock_state)

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.runtime.start()
        for door_cfg in self.config.doors:
            self.doors[door_cfg.id] = Door(door_cfg, pins=self._pin_factory, emit=self._emit_quiet)
        self.policies.load()
        if self.config.policy.file and self.config.policy.file.exists():
            self.policies.offer(self.config.policy.file.read_bytes(), source="file")
        self._on_policy_change()
        self.runtime.subscribe(policy_topic(self.config.node.site, self.config.node.name),
                               self._on_policy_message, max_payload=MAX_POLICY_BYTES)
        self.enrol.start()
        if self.printing is not None:
            # Releases talk to CUPS (seconds for many jobs): never on the readers' thread.
            self._print_worker = ThreadPoolExecutor(1, thread_name_prefix="print-release")
            try:
                self.printing.ensure_holding()
            except PrintError:
                log.exception("CUPS unreachable at start; hold queues are re-checked every tick")
        if self.cameras is not None:
            self.cameras.start()
        self.publish_health()
        self._health_thread = threading.Thread(target=self._health_loop, name="health", daemon=True)
        self._health_thread.start()
        self.reader.start(self)

    def stop(self) -> None:
        self._stop.set()
        self.reader.stop()
        self.enrol.stop()
        if self._health_thread:
            self._health_thread.join(5)
        if self._print_worker is not None:
            self._print_worker.shutdown(wait=True)
        if self.cameras is not None:
            self.cameras.stop()
        for door in self.doors.values():
            door.close()
        self.runtime.stop()

    def alive(self) -> bool:
        """The runtime and the health loop run (``secroom gateway run`` pings the watchdog on
        it: a hung or dead node is restarted by systemd)."""
        thread = self._health_thread
        return self.runtime.alive() and thread is not None and thread.is_alive()

    # -- policy -------------------------------------------------------------------------------
    def offer_policy(self, blob: bytes) -> bool:
        applied = self.policies.offer(blob)
        if applied:
            self.publish_health()
        return applied

    def _on_policy_message(self, _topic: str, payload: bytes) -> None:
        self.offer_policy(payload)

    def _on_policy_change(self) -> None:
        self._apply_lockdown()
        self._apply_card_keys()

    def _apply_card_keys(self) -> None:
        verifier = getattr(self.reader, "verifier", None)
        policy = self.policies.applied
        if verifier is not None:
            verifier.set_keys(policy.site_keys if policy is not None else [])

    def _apply_lockdown(self) -> None:
        policy = self.policies.applied
        for door_id, door in self.doors.items():
            on = bool(policy and (policy.lockdown or door_id in policy.lockdown_doors))
            door.lockdown(on)

    # -- TapSink ------------------------------------------------------------------------------
    def on_tap(self, tap: CardTap) -> None:
        self.counters["taps"] += 1
        if self.enrol.on_tap(tap):  # a card being personalised opens nothing
            return
        binding = self.config.binding_for(tap.reader)
        if binding is None:
            self.counters["unbound_taps"] += 1
            self._emit_quiet("reader.unbound_tap", ReaderUnboundTap(reader=tap.reader))
            return
        if binding.role is ReaderRole.PRINTER:
            self._print_tap(binding, tap)
        else:
            self._door_tap(binding, tap)
        self.enrol.rekeyed(tap)  # after the door: a changeover's re-key delays no relay

    def on_status(self, status: ReaderStatus) -> None:
        self.readers_connected[status.reader] = status.connected
        if status.connected:
            self._emit_quiet("reader.connected",
                             ReaderConnected(reader=status.reader, detail=status.detail))
        else:
            self._emit_quiet("reader.disconnected",
                             ReaderDisconnected(reader=status.reader, detail=status.detail))

    def on_alarm(self, alarm: ReaderAlarm) -> None:
        """A reader's own report (OSDP): tamper, power, a refused secure channel."""
        self.reader_alarms[(alarm.reader, alarm.kind.value)] = alarm.active
        if alarm.kind is AlarmKind.TAMPER:
            self._emit_quiet("reader.tamper", ReaderTamper(reader=alarm.reader,
                                                           active=alarm.active,
                                                           detail=alarm.detail))
        elif alarm.kind is AlarmKind.POWER:
            self._emit_quiet("reader.power", ReaderPower(reader=alarm.reader, failed=alarm.active,
                                                         detail=alarm.detail))
        else:
            self._emit_quiet("reader.secure_refused", ReaderSecureRefused(
                reader=alarm.reader, active=alarm.active, detail=alarm.detail))

    def on_failure(self, failure: ReadFailure) -> None:
        self.counters["read_failures"] += 1
        binding = self.config.binding_for(failure.reader)
        if binding and binding.door and binding.role is not ReaderRole.PRINTER:
            door = self.doors.get(binding.door)
            if door:
                door.deny()
                self._signal(failure.reader, Signal.DENIED, door.config.unlock_s)
        self._emit_quiet(
            "reader.read_failed",
            ReaderReadFailed(reader=failure.reader, reason=FailureReason(failure.reason),
                             detail=failure.detail),
        )

    # -- doors --------------------------------------------------------------------------------
    def _door_tap(self, binding: ReaderBinding, tap: CardTap) -> Decision:
        # the stills this tap asks for are queued once the relay has moved: the camera's
        # thread must not wake (and take the GIL) between the journal commit and the relay
        self._deferred.stills = []
        try:
            return self._decide_door(binding, tap)
        finally:
            stills, self._deferred.stills = self._deferred.stills, None
            if self.cameras is not None:
                for args in stills:
                    self.cameras.on_event(*args)

    def _decide_door(self, binding: ReaderBinding, tap: CardTap) -> Decision:
        assert binding.door is not None
        direction = Direction.OUT if binding.role is ReaderRole.DOOR_OUT else Direction.IN
        cred = tap.credential
        request = AccessRequest(
            door=binding.door, direction=direction, uid=tap.uid, reader=tap.reader,
            credential=Strength(cred.strength.value), card_type=cred.card_type.value,
            credential_key=cred.key_id, credential_detail=cred.detail,
        )
        door = self.doors[binding.door]
        opened = False
        with self._lock:
            policy = self.policies.applied
            decision, state = decide(policy, self._state, request, self.clock(),
                                     honour_expiry=self._honour_expiry)
            if decision.reason is Denial.POLICY_STALE:
                self.policies.check_stale()  # node.policy_stale, once per version
            recorded = True
            for kind, payload in access_events(decision, request, policy):
                recorded = self._emit_quiet(kind, payload) and recorded
            if decision.granted and (recorded or door.config.unrecorded_access == "open"):
                self._state = state
                self.counters["granted"] += 1
                self.decisions[(door.config.id, "granted", "none")] += 1
                try:
                    door.grant(person_id=decision.person_id)
                    opened = True
                except DoorError:  # the door stayed locked (fail closed); counted, logged
                    self.counters["grant_failed"] += 1
                    log.exception("door %s could not be unlocked", door.config.id)
            else:
                if decision.granted:  # fail closed: an entry nobody could audit does not happen
                    self.counters["denied_unrecorded"] += 1
                    self.decisions[(door.config.id, "denied", "unrecorded")] += 1
                    log.error("door %s stays shut: its access was not journaled", door.config.id)
                else:
                    self._state = state
                    self.counters["denied"] += 1
                    reason = decision.reason.value if decision.reason else "unknown"
                    self.decisions[(door.config.id, "denied", reason)] += 1
                door.deny()
        # the reader's own LED and buzzer (OSDP) show what the door did, after the relay
        if opened:
            self._signal(tap.reader, Signal.GRANTED, door.config.unlock_s)
        elif decision.reason is Denial.AWAITING_SECOND and policy is not None:
            rule = policy.door(binding.door)
            self._signal(tap.reader, Signal.PENDING,
                         rule.two_person_window_s if rule else door.config.unlock_s)
        else:
            self._signal(tap.reader, Signal.DENIED, door.config.unlock_s)
        return decision

    def _pcsc_reader(self, name: str) -> bool:
        binding = self.config.binding_for(name)
        return binding is not None and binding.kind != "osdp"

    def _signal(self, reader: str, signal: Signal, seconds: float) -> None:
        send = getattr(self.reader, "signal", None)
        if send is not None:
            send(reader, signal, seconds)

    # -- printers -----------------------------------------------------------------------------
    def _print_tap(self, binding: ReaderBinding, tap: CardTap) -> None:
        printer = binding.printer
        if self.printing is None or self._print_worker is None or printer is None:
            # the config refuses a printer reader without [printing]: a start-up race at most
            self._emit_quiet(PRINT_DENIED, PrintDeniedPayload(
                printer=printer or binding.name, person_id=None, reason="printing_not_configured"))
            return
        policy = self.policies.current
        person = person_for_card(policy, tap.uid)
        if person is None:
            self._print_worker.submit(self.printing.release_for, None, [], printer)
        elif policy is not None and not credential_holds(policy, tap.uid,
                                                         Strength(tap.credential.strength)):
            # a copy of a verified card releases nothing (reported as no_right, counted)
            self.decisions[(printer, "denied", Denial.CREDENTIAL_FAILED.value)] += 1
            self._print_worker.submit(self.printing.release_for, person.id, [], printer,
                                      denial=Denial.CREDENTIAL_FAILED.value)
        else:
            self._print_worker.submit(
                self.printing.release_for, person.id, person.cups_users, printer
            )

    def _print_right(self, person_id: str, printer: str, now: datetime) -> str | None:
        denial = may_print(self.policies.current, person_id, printer, now)
        return denial.value if denial else None

    def _is_present(self, person_id: str, _now: datetime) -> bool:
        with self._lock:
            return self._state.presence.get(person_id) is Direction.IN

    # -- health -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        policy = self.policies.applied
        return {
            "policy_version": policy.version if policy else None,
            "clock": self.clock_state(),
            "readers": dict(self.readers_connected),
            "reader_alarms": sorted(f"{r}:{k}" for (r, k), on in self.reader_alarms.items() if on),
            "doors": {d: door.state for d, door in self.doors.items()},
            "counters": dict(self.counters),
            # a broker outage leaves no event (nothing can be sent then): its trace is here
            "mqtt": {k: self.runtime.link.stats.get(k, 0)
                     for k in ("connects", "disconnects", "oversized")},
            # individual numbers the journal replaced in events (controller.numguard)
            "numbers_removed": self.runtime.journal.numbers_removed,
            **({"cameras": self.cameras.health()} if self.cameras is not None else {}),
        }

    def publish_health(self) -> None:
        self.runtime.publish_state(self.health())

    def _health_loop(self) -> None:
        while not self._stop.wait(HEALTH_INTERVAL_S):
            self.policies.check_stale()
            self.publish_health()
            if self.printing is not None:
                try:
                    self.printing.ensure_holding()
                    self.printing.expire(self.clock())
                except PrintError:
                    log.warning("CUPS unreachable; expiry retried on the next tick")

    def _emit_quiet(self, kind: str, data: BaseModel) -> bool:
        """Journal an event; False (counted and logged) when the journal cannot take it. A
        watched event queues its still (never waits for it)."""
        event = self._emit_event(kind, data)
        if event is None:
            return False
        if self.cameras is not None:
            stills = getattr(self._deferred, "stills", None)
            if stills is not None:  # a tap being decided on this thread: after its relay
                stills.append((kind, data, event.id, self.clock()))
            else:
                self.cameras.on_event(kind, data, event.id, self.clock())
        return True

    def _emit_event(self, kind: str, data: BaseModel) -> Event | None:
        try:
            return self.runtime.emit(kind, data)
        except JournalError:
            self.counters["journal_failures"] += 1
            log.exception("journal write failed for %s", kind)
            return None
