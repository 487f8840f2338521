"""The host agent: card log-on through PAM, locks on card removal and on leaving the room, and
the operations log, on one node runtime (the USB feature runs beside it, see
controller.host_agent).

Threads: the card reader's (taps, removals), the PAM socket's (one per request), the MQTT
link's (policy, presence, door events), one that carries out locks and log-offs
(actions.py), a tick (log-off after the card stayed away, daily health), and one per
operations-log source (oplog.py). The shared state (cards on the readers, who is logged on
with which card) is guarded by one lock; decisions are the pure functions of logon.py and
sessions.py.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.host import health
from controller.host.actions import SessionActions
from controller.host.config import HostAgentConfig
from controller.host.events import (
    KIND_HEALTH,
    KIND_LOGON,
    KIND_UNLOCKED,
    HostHealth,
    HostLogon,
    HostUnlocked,
)
from controller.host.logind import Logind
from controller.host.logon import (
    CardOnReader,
    LogonDecision,
    LogonRequest,
    LogonRules,
    decide_logon,
    is_admin,
    is_remote,
)
from controller.host.pam_server import Caller, PamAnswer, PamRequest, PamServer
from controller.host.presence import (
    PresenceError,
    PresenceView,
    door_events_topic,
    door_moves,
    open_presence,
    presence_topic,
)
from controller.host.sessions import CardSessions
from controller.policy import Policy
from readers.base import CardRemoved, CardTap, ReaderStatus, ReadFailure

TICK_S = 1.0


class HostAgent:
    def __init__(self, config: HostAgentConfig, *, site: str, emit: Callable[..., Any],
                 policy: Callable[[], Policy | None], logind: Logind, trusted: list[Any],
                 clock: Callable[[], datetime], state_dir: Path) -> None:
        self.config = config
        self.site = site
        self.emit = emit
        self.policy = policy
        self.trusted = trusted
        self.clock = clock
        self.state_dir = state_dir
        self.rules = LogonRules(frozenset(config.remote_services),
                                frozenset(config.break_glass_accounts), config.presence_unknown)
        self.presence = PresenceView(max_age_s=config.presence_max_age_s)
        self.sessions = CardSessions(logoff_after_s=config.logoff_after_s)
        self.actions = SessionActions(config.host, logind, emit, tty_on_lock=config.tty_on_lock)
        self.pam = PamServer(config.socket, self.handle_pam,
                             rate_per_min=config.caller_rate_per_min)
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._cards_changed = threading.Condition(self._lock)
        self._cards: dict[str, str] = {}  # reader -> UID of the card lying on it
        self._readers: set[str] = set()
        self._stop = threading.Event()
        self._tick: threading.Thread | None = None
        self._presence_seen = threading.Condition()

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.actions.start()
        self.pam.start()
        self._stop.clear()
        self._tick = threading.Thread(target=self._ticker, name="host-tick", daemon=True)
        self._tick.start()

    def stop(self) -> None:
        self._stop.set()
        self.pam.stop()
        if self._tick is not None:
            self._tick.join(5)
            self._tick = None
        self.actions.stop()

    def subscribe(self, subscribe: Callable[..., Any]) -> None:
        """Follow the signed presence statement and the doors' events."""
        subscribe(presence_topic(self.site), self.on_presence_message, max_payload=1024 * 1024)
        subscribe(door_events_topic(self.site), self.on_door_message, max_payload=64 * 1024)

    # -- the card reader (its thread) --------------------------------------------------------

    def _mine(self, reader: str) -> bool:
        names = self.config.readers
        return not names or any(reader.startswith(n[:-1]) if n.endswith("*") else reader == n
                                for n in names)

    def on_tap(self, tap: CardTap) -> None:
        if not self._mine(tap.reader):
            return
        with self._lock:
            self._cards[tap.reader] = tap.uid
            self._readers.add(tap.reader)
            self.sessions.card_present(tap.uid)
            self._cards_changed.notify_all()

    def on_removed(self, removed: CardRemoved) -> None:
        if self._mine(removed.reader):
            self._card_gone(removed.reader)

    def on_status(self, status: ReaderStatus) -> None:
        if not self._mine(status.reader):
            return
        with self._lock:
            if status.connected:
                self._readers.add(status.reader)
            else:
                self._readers.discard(status.reader)
        if not status.connected:  # its card is as good as gone: fail closed
            self._card_gone(status.reader)

    def on_failure(self, failure: ReadFailure) -> None:
        self.counters[f"read_failed.{failure.reason}"] += 1

    def _card_gone(self, reader: str) -> None:
        with self._lock:
            uid = self._cards.pop(reader, None)
            locks = self.sessions.card_removed(uid, self.clock()) if uid else []
            self._cards_changed.notify_all()
        for lock in locks:
            self.actions.submit(lock)

    # -- presence (the MQTT thread) ----------------------------------------------------------

    def on_presence_message(self, _topic: str, payload: bytes) -> None:
        try:
            statement = open_presence(payload, self.trusted, site=self.site)
        except PresenceError:
            self.counters["presence_refused"] += 1
            return
        self._left(self.presence.offer(statement, self.clock()))
        with self._presence_seen:
            self._presence_seen.notify_all()

    def on_door_message(self, _topic: str, payload: bytes) -> None:
        try:
            moves = door_moves(payload, self.presence.statement, site=self.site)
        except PresenceError:
            self.counters["door_events_refused"] += 1
            return
        self._left(self.presence.move(moves))
        with self._presence_seen:
            self._presence_seen.notify_all()

    def _left(self, people: list[str]) -> None:
        now = self.clock()
        with self._lock:
            locks = [lk for p in people for lk in self.sessions.person_left(p, now)]
        for lock in locks:
            self.actions.submit(lock)

    def wait_card(self, uid: str | None, timeout: float) -> bool:
        """True once the card ``uid`` lies on a reader (None: once no card does)."""
        with self._lock:
            return self._cards_changed.wait_for(
                lambda: (uid in self._cards.values()) if uid else not self._cards, timeout)

    def wait_presence(self, person_id: str, state: str, timeout: float) -> bool:
        """True once the agent knows ``person_id`` to be ``state`` (in, out, unknown)."""
        with self._presence_seen:
            return self._presence_seen.wait_for(
                lambda: self.presence.state(person_id, self.clock()) == state, timeout)

    # -- PAM (one thread per request) --------------------------------------------------------

    def handle_pam(self, req: PamRequest, caller: Caller) -> PamAnswer:
        """One log-on, asked once by the PAM stack after its password check (pam_server)."""
        logon = LogonRequest(req.user, req.service, self.config.host, req.tty, req.rhost)
        wait = self.config.card_wait_s if req.step == "card" else 0.0
        decision = self._decide(logon, wait)
        if req.step == "password_failed":  # journaled with the card that lay there, if any
            self._journal_logon(logon, decision, granted=False, reason="wrong_password",
                                stage="password")
            return PamAnswer(True)
        self._journal_logon(logon, decision, granted=decision.granted, reason=decision.reason,
                            stage="card")
        if not decision.granted:
            return PamAnswer(False, decision.reason)
        with self._lock:
            was_locked = self.sessions.logged_on(req.user, decision, self.clock())
        if was_locked:
            self.emit(KIND_UNLOCKED, HostUnlocked(
                host=self.config.host, account=req.user, person_id=decision.person_id,
                service=req.service, card=decision.card))
        return PamAnswer(True)

    def _decide(self, logon: LogonRequest, wait_s: float) -> LogonDecision:
        """The decision for the cards on the readers, waiting up to ``wait_s`` for one."""
        wait_until = time.monotonic() + wait_s
        with self._lock:
            while (not self._cards and not is_remote(logon, self.rules)
                   and (left := wait_until - time.monotonic()) > 0):
                self._cards_changed.wait(left)
            cards = [CardOnReader(r, u) for r, u in sorted(self._cards.items())]
            readers = len(self._readers)
        now = self.clock()
        return decide_logon(self.policy(), logon, cards, readers,
                            lambda pid: self.presence.state(pid, now), now, self.rules)

    def _journal_logon(self, req: LogonRequest, d: LogonDecision, *, granted: bool,
                       reason: str | None, stage: str) -> None:
        policy = self.policy()
        self.counters["logon_granted" if granted else "logon_denied"] += 1
        self.emit(KIND_LOGON, HostLogon.model_validate({
            "host": self.config.host, "account": req.account[:128],
            "service": req.service[:128], "tty": req.tty[:128],
            "remote": is_remote(req, self.rules), "granted": granted, "reason": reason,
            "stage": stage, "person_id": d.person_id, "card": d.card,
            "reader": (d.reader or "")[:128] or None, "presence": d.presence,
            "break_glass": d.break_glass, "policy_version": policy.version if policy else None}))

    # -- the operations log's view of the policy ---------------------------------------------

    def resolve(self, account: str | None) -> tuple[str | None, bool | None]:
        policy = self.policy()
        if policy is None or not account:
            return None, None
        person = policy.person_for_account(account)
        return (person.id if person else None), is_admin(policy, person, self.config.host)

    # -- tick: log-offs and the daily health -------------------------------------------------

    def _ticker(self) -> None:
        next_health = 0.0
        while not self._stop.wait(TICK_S):
            with self._lock:
                logoffs = self.sessions.tick(self.clock())
            for logoff in logoffs:
                self.actions.submit(logoff)
            if time.monotonic() >= next_health:
                with contextlib.suppress(Exception):
                    self.emit_health()
                next_health = time.monotonic() + self.config.health_interval_s

    def emit_health(self) -> None:
        mounts = [Path("/"), *(w.path for w in self.config.watches)]
        units, known = health.failed_units()
        counters = dict(self.counters) | {f"pam.{k}": v for k, v in self.pam.counters.items()} \
            | {f"actions.{k}": v for k, v in self.actions.counters.items()}
        with self._lock:
            readers = sorted(self._readers)
        self.emit(KIND_HEALTH, HostHealth(
            host=self.config.host, disks=health.disks(mounts), failed_units=units,
            failed_units_known=known, last_update=health.last_update(),
            clock_synced=health.clock_synced(), uptime_s=health.uptime_s(),
            readers=[r[:128] for r in readers][:16],
            presence_fresh=self.presence.fresh(self.clock()), counters=counters))
