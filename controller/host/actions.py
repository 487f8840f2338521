"""Carrying out locks and log-offs through logind, one at a time, off the callers' threads.

The card reader's thread (a card left), the MQTT thread (someone left the room) and the
agent's tick (the card stayed away) only queue an action; one worker asks logind for the
account's local sessions, locks them (a text console is ended instead, see
``tty_on_lock``) or ends them, and journals host.locked / host.logoff with what was done,
or with ``ok`` false and the reason when logind could not be asked.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from controller.host.events import KIND_LOCKED, KIND_LOGOFF, HostLocked, HostLogoff
from controller.host.logind import Logind, LogindError
from controller.host.sessions import Lock, Logoff

log = logging.getLogger(__name__)


class SessionActions:
    def __init__(self, host: str, logind: Logind, emit: Callable[..., Any], *,
                 tty_on_lock: str = "terminate") -> None:
        self.host = host
        self.logind = logind
        self.emit = emit
        self.tty_on_lock = tty_on_lock
        self.counters: Counter[str] = Counter()
        self._queue: queue.Queue[Lock | Logoff | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="host-actions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(15)
            self._thread = None

    def submit(self, action: Lock | Logoff) -> None:
        self._queue.put(action)

    def _run(self) -> None:
        while (action := self._queue.get()) is not None:
            try:
                if isinstance(action, Lock):
                    self.lock(action)
                else:
                    self.logoff(action)
            except Exception:  # one failure must not stop later locks
                self.counters["errors"] += 1
                log.exception("carrying out %s failed", action)

    def _apply(self, account: str, end_all: bool) -> tuple[list[str], list[str], bool, str]:
        """Lock (or, with ``end_all``, end) the account's local sessions; a text console is
        ended rather than locked per ``tty_on_lock``. (locked, ended, ok, detail)."""
        locked: list[str] = []
        ended: list[str] = []
        try:
            for s in self.logind.sessions(account):
                if not s.local:
                    continue
                if end_all or (s.type == "tty" and self.tty_on_lock == "terminate"):
                    self.logind.terminate(s.id)
                    ended.append(s.id)
                else:
                    self.logind.lock(s.id)
                    locked.append(s.id)
        except LogindError as exc:
            self.counters["logind_errors"] += 1
            return locked, ended, False, str(exc)[:512]
        return locked, ended, True, ""

    def lock(self, action: Lock) -> None:
        locked, ended, ok, detail = self._apply(action.account, end_all=False)
        self.counters["locks"] += 1
        self.emit(KIND_LOCKED, HostLocked(
            host=self.host, account=action.account, person_id=action.person_id,
            reason=action.reason, sessions=locked, terminated=ended, ok=ok, detail=detail))

    def logoff(self, action: Logoff) -> None:
        _, ended, ok, detail = self._apply(action.account, end_all=True)
        self.counters["logoffs"] += 1
        self.emit(KIND_LOGOFF, HostLogoff(
            host=self.host, account=action.account, person_id=action.person_id,
            reason=action.reason, away_s=round(action.away_s, 1), sessions=ended, ok=ok,
            detail=detail))
