"""Enrolment of a blank card at one of this gateway's readers, on a signed command.

The dashboard publishes ``secroom/v1/{site}/{node}/enrol`` (controller.receipts: signed with the
key the node pins for its policy, bound to this site and node, with a counter that only grows).
The node refuses anything else (unsigned, unknown signer, bad signature, another node's, an old
counter: a replay), counts it (``enrol_refused``) and journals it as node.receipt_refused, like
a forged ack. A good command names one of this node's readers; the reader's verifier is armed
(readers.verify.select.CardVerifier.arm) and the next card there within ``wait_s`` seconds is
personalised with the newest site key instead of opening anything. A command is journaled as
``card.enrolment`` "waiting" when the reader waits, and ends in one more: personalised (card,
type, key id), failed (the step), timeout (no card came), or refused (no such reader here, or
an enrolment already waiting there, or a command that arrived after its wait was over, judged
by ``issued_at`` on a synchronised clock).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from controller.card_events import KIND_ENROLMENT, KIND_REKEYED, CardEnrolment, CardRekeyed
from controller.envelope import parse_ts, topic_for
from controller.receipts import MAX_RECEIPT_BYTES, EnrolCommand, ReceiptRefused, open_enrol
from readers.base import CardTap
from readers.verify.base import Strength

log = logging.getLogger(__name__)
STALE_SLACK_S = 60  # a synchronised clock may still be this far from the dashboard's


class CardEnrolDesk:
    def __init__(self, runtime: Any, verifier: Any, is_reader: Callable[[str], bool], *,
                 emit: Callable[[str, BaseModel], object], counters: dict[str, int],
                 clock: Callable[[], datetime], clock_state: Callable[[], str]) -> None:
        self.runtime = runtime
        self.verifier = verifier  # None: this node's readers cannot personalise (not PC/SC)
        self.is_reader = is_reader  # a PC/SC reader bound on this node
        self.emit = emit
        self.counters = counters
        self.clock, self.clock_state = clock, clock_state
        for name in ("enrol_commands", "enrol_refused", "enrol_repeated"):
            counters.setdefault(name, 0)
        self._timers: dict[str, threading.Timer] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        s = self.runtime.settings
        self.runtime.subscribe(topic_for(s.site, s.node, "enrol"), self.on_message,
                               max_payload=MAX_RECEIPT_BYTES)

    def stop(self) -> None:
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()

    # -- commands ---------------------------------------------------------------------------
    def on_message(self, _topic: str, payload: bytes) -> None:
        s = self.runtime.settings
        try:
            cmd = open_enrol(payload, self.runtime.publisher.trusted, site=s.site, node=s.node)
            if not self.runtime.journal.accept_receipt("enrol", cmd.counter):
                self.counters["enrol_repeated"] += 1  # the same command delivered again
                return
        except ReceiptRefused as exc:
            self.counters["enrol_refused"] += 1
            log.warning("enrol command refused: %s", exc.reason)
            self.runtime.receipt_refused("enrol", exc.reason)
            return
        self.counters["enrol_commands"] += 1
        self.take(cmd)

    def take(self, cmd: EnrolCommand) -> None:
        if self._stale(cmd):
            self._result(cmd.request, cmd.reader, "refused",
                         detail="the command arrived after its wait was over")
            return
        if self.verifier is None or not self.is_reader(cmd.reader):
            self._result(cmd.request, cmd.reader, "refused",
                         detail="no PC/SC reader of that name on this node")
            return
        if self.verifier.armed(cmd.reader) is not None:
            self._result(cmd.request, cmd.reader, "refused",
                         detail="another enrolment is waiting at this reader")
            return
        self.verifier.arm(cmd.reader, cmd.request, time.monotonic() + cmd.wait_s)
        timer = threading.Timer(cmd.wait_s, self._expire, (cmd,))
        timer.daemon = True
        with self._lock:
            self._timers[cmd.request] = timer
        timer.start()
        self._result(cmd.request, cmd.reader, "waiting",
                     detail=f"present the card within {cmd.wait_s} s")

    def _stale(self, cmd: EnrolCommand) -> bool:
        """A command delivered late (queued for an offline node): judged only on a clock that
        is synchronised; a clock that is not cannot tell, and the wait is bounded anyway."""
        if self.clock_state() != "synced":
            return False
        try:
            issued = parse_ts(cmd.issued_at)
        except ValueError:
            return True
        return self.clock() - issued > timedelta(seconds=cmd.wait_s + STALE_SLACK_S)

    def _expire(self, cmd: EnrolCommand) -> None:
        with self._lock:
            self._timers.pop(cmd.request, None)
        if self.verifier.disarm(cmd.reader, cmd.request):
            self._result(cmd.request, cmd.reader, "timeout",
                         detail=f"no card presented within {cmd.wait_s} s")

    # -- taps -------------------------------------------------------------------------------
    def on_tap(self, tap: CardTap) -> bool:
        """Journal what a tap did to the card; True when it served an enrolment (and so
        opens nothing)."""
        cred = tap.credential
        if cred.enrolment is not None:
            with self._lock:
                timer = self._timers.pop(cred.enrolment, None)
            if timer is not None:
                timer.cancel()
            ok = cred.strength is Strength.VERIFIED
            self._result(cred.enrolment, tap.reader, "personalised" if ok else "failed",
                         card=tap.uid, card_type=cred.card_type.value,
                         key_id=cred.key_id if ok else None, detail=cred.detail)
            return True
        return False

    def rekeyed(self, tap: CardTap) -> None:
        cred = tap.credential
        if cred.rekeyed_from is not None and cred.key_id is not None:
            self.emit(KIND_REKEYED, CardRekeyed(
                reader=tap.reader, card=tap.uid, card_type=cred.card_type.value,  # type: ignore[arg-type]
                key_id=cred.key_id, previous_key=cred.rekeyed_from))

    def _result(self, request: str, reader: str, outcome: str, *, detail: str = "",
                **fields: Any) -> None:
        self.emit(KIND_ENROLMENT, CardEnrolment(request=request, reader=reader,
                                                outcome=outcome, detail=detail[:160], **fields))
