"""Enrolment of a blank card at a reader: the admin's request, the signed command, the outcome.

An admin picks a person and a reader (a node and one of its readers) on the person's page;
``request_enrolment`` stores the request (audited ``card.personalise_request``). The sender
(``EnrolSender``, a part of the dashboard runtime next to the policy signer, with its key)
signs it as an enrol command (controller.receipts: bound to that site and node, with a counter
per node that only grows, so a node refuses a replay) and publishes it to
``secroom/v1/{site}/{node}/enrol``. The node arms that reader; the next card there is
personalised with the newest site key (controller.card_enrol) and the node journals a
``card.enrolment`` event. The sender reads those events as the ingest stores them: the card is
then registered to the person (``services.enrol_card``: credential = the card type, key id =
the site key; audited ``card.enrol`` with where and when it was personalised) and the request
closed (audited ``card.personalise_done``, or ``card.personalise_failed`` with the reason). A
request nobody answers closes as expired. ``card.rekeyed`` events (a changeover's re-key at a
tap) move the card's key id (audited ``card.rekey``).

The secret keys never leave the node: the command names only the reader and the request.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.envelope import format_ts, topic_for
from controller.events import parse_roles
from controller.receipts import ENROL_WAIT_MAX_S, EnrolCommand, sign_enrol
from dashboard.audit import append_audit
from dashboard.models import Card, Node, StoredEvent
from dashboard.models.card_enrol import OPEN_STATES, CardEnrolment
from dashboard.services.base import Conflict, ServiceError, check_actor
from dashboard.services.cards import enrol_card
from dashboard.services.people import get_person
from dashboard.textguard import guard_text

log = logging.getLogger(__name__)

WAIT_S = 60
ANSWER_GRACE_S = 60  # after the wait: the node's last word may still be on its way
FINAL = ("personalised", "failed", "timeout", "refused")
Publish = Callable[[str, bytes, bool], Any]


def request_enrolment(session: Session, actor: str, person_id: str, node: str, reader: str,
                      *, now: datetime, label: str = "", wait_s: int = WAIT_S) -> CardEnrolment:
    """Store a request to personalise the next card at ``node``'s ``reader`` for a person."""
    check_actor(actor)
    person = get_person(session, person_id)
    if not 1 <= wait_s <= ENROL_WAIT_MAX_S:
        raise ServiceError(f"the wait is 1..{ENROL_WAIT_MAX_S} seconds")
    label = guard_text(label, "label")
    if len(label) > 128 or not reader or len(reader) > 128:
        raise ServiceError("the label or the reader name is too long")
    row = session.get(Node, node)
    if row is None or row.key_status != "approved" \
            or "door_gateway" not in parse_roles(row.roles or ""):
        raise ServiceError(f"node {node!r} is not an approved door gateway")
    busy = session.scalar(select(CardEnrolment).where(
        CardEnrolment.node == node, CardEnrolment.reader == reader,
        CardEnrolment.state.in_(OPEN_STATES)))
    if busy is not None and not _overdue(busy, now):
        raise Conflict("an enrolment is already waiting at this reader")
    counter = (session.scalar(select(func.max(CardEnrolment.counter))
                              .where(CardEnrolment.node == node)) or 0) + 1
    enrolment = CardEnrolment(id=secrets.token_hex(8), person_id=person.id, node=node,
                              reader=reader, label=label, wait_s=wait_s, counter=counter,
                              state="requested", requested_by=actor, requested_at=now)
    session.add(enrolment)
    session.flush()
    append_audit(session, actor=actor, action="card.personalise_request", target_type="person",
                 target_id=person.id, before=None,
                 after={"request": enrolment.id, "node": node, "reader": reader,
                        "wait_s": wait_s}, now=now)
    return enrolment


def _overdue(row: CardEnrolment, now: datetime) -> bool:
    since = row.sent_at or row.requested_at
    return now > since + timedelta(seconds=row.wait_s + ANSWER_GRACE_S)


def latest_for(session: Session, person_id: str) -> CardEnrolment | None:
    return session.scalar(select(CardEnrolment).where(CardEnrolment.person_id == person_id)
                          .order_by(CardEnrolment.requested_at.desc()).limit(1))


class EnrolSender:
    """Signs and publishes the stored requests, and closes them from the node's events: those
    of its site's nodes (a central dashboard runs one per site, each on its site's link)."""

    def __init__(self, sessionmaker: Any, key: Ed25519PrivateKey, *, site: str,
                 publish: Publish, clock: Callable[[], datetime], poll_s: float = 0.5) -> None:
        self.sm, self.key, self.site, self.publish = sessionmaker, key, site, publish
        self.clock, self.poll_s = clock, poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rekey_cursor = 0
        self.counts: dict[str, int] = {"sent": 0, "closed": 0, "rekeyed": 0, "errors": 0}

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="card-enrol", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - a broken round is counted; the next one retries
                self.counts["errors"] += 1
                log.exception("card enrolment round failed; retried")

    def poll(self) -> None:
        now = self.clock()
        with self.sm.begin() as db:
            for row in db.scalars(select(CardEnrolment).join(
                    Node, Node.name == CardEnrolment.node).where(
                    CardEnrolment.state.in_(OPEN_STATES), Node.site == self.site)):
                self._step(db, row, now)
        with self.sm.begin() as db:
            self._rekeys(db, now)

    def _step(self, db: Session, row: CardEnrolment, now: datetime) -> None:
        if row.state == "requested" and not _overdue(row, now):
            cmd = EnrolCommand(self.site, row.node, row.reader, row.id, row.wait_s, row.counter,
                               format_ts(now))
            self.publish(topic_for(self.site, row.node, "enrol"), sign_enrol(self.key, cmd),
                         False)
            row.state, row.sent_at = "sent", now
            self.counts["sent"] += 1
            return
        answer = self._answer(db, row)
        if answer is None:
            if _overdue(row, now):
                self._close(db, row, "expired", now, detail="the node did not answer")
            return
        event, data = answer
        if data["outcome"] == "waiting":
            row.state = "waiting"
        elif data["outcome"] == "personalised":
            self._register(db, row, event, data, now)
        else:
            self._close(db, row, data["outcome"], now, detail=data.get("detail") or "",
                        uid=data.get("card"), card_type=data.get("card_type"))

    def _answer(self, db: Session, row: CardEnrolment) -> tuple[StoredEvent, dict[str, Any]] \
            | None:
        """The node's latest word on this request (a final outcome over "waiting")."""
        since = row.requested_at - timedelta(minutes=10)  # the node's clock may be behind
        found: tuple[StoredEvent, dict[str, Any]] | None = None
        for event in db.scalars(select(StoredEvent).where(
                StoredEvent.kind == "card.enrolment", StoredEvent.ts >= since,
                StoredEvent.node == row.node).order_by(StoredEvent.seq)):
            data = event.data if isinstance(event.data, dict) else {}
            if data.get("request") == row.id and data.get("reader") == row.reader \
                    and (found is None or data.get("outcome") in FINAL):
                found = (event, data)
        return found

    def _register(self, db: Session, row: CardEnrolment, event: StoredEvent,
                  data: dict[str, Any], now: datetime) -> None:
        presented = {"node": row.node, "reader": row.reader, "seq": event.seq,
                     "at": event.ts,
                     "request": row.id, "personalised": True}
        try:
            with db.begin_nested():
                enrol_card(db, row.requested_by, row.person_id, str(data.get("card") or ""),
                           label=row.label, now=now, presented=presented,
                           credential=str(data.get("card_type") or "uid"),
                           key_id=data.get("key_id"))
        except ServiceError as exc:  # e.g. the card is someone else's: nothing is bound
            self._close(db, row, "failed", now, detail=str(exc)[:160], uid=data.get("card"),
                        card_type=data.get("card_type"))
            return
        self._close(db, row, "personalised", now, uid=data.get("card"),
                    card_type=data.get("card_type"), key_id=data.get("key_id"))

    def _close(self, db: Session, row: CardEnrolment, state: str, now: datetime, *,
               detail: str = "", uid: Any = None, card_type: Any = None,
               key_id: Any = None) -> None:
        row.state, row.finished_at, row.detail = state, now, detail[:160] or None
        row.uid, row.card_type, row.key_id = uid, card_type, key_id
        action = "card.personalise_done" if state == "personalised" else \
            "card.personalise_failed"
        append_audit(db, actor=row.requested_by, action=action, target_type="person",
                     target_id=row.person_id, before=None,
                     after={"request": row.id, "node": row.node, "reader": row.reader,
                            "outcome": state, "card": uid, "card_type": card_type,
                            "key_id": key_id, "detail": row.detail}, now=now)
        self.counts["closed"] += 1

    def _rekeys(self, db: Session, now: datetime) -> None:
        for event in db.scalars(select(StoredEvent).join(Node, Node.name == StoredEvent.node)
                                .where(StoredEvent.kind == "card.rekeyed",
                                       StoredEvent.id > self._rekey_cursor,
                                       Node.site == self.site)
                                .order_by(StoredEvent.id)):
            self._rekey_cursor = event.id
            data = event.data if isinstance(event.data, dict) else {}
            card = db.get(Card, str(data.get("card") or ""))
            if card is None or card.key_id == data.get("key_id"):
                continue
            before = {"key_id": card.key_id}
            card.key_id = str(data.get("key_id"))[:32]
            append_audit(db, actor=f"node:{event.node}"[:64], action="card.rekey",
                         target_type="card", target_id=card.uid, before=before,
                         after={"key_id": card.key_id, "reader": data.get("reader"),
                                "seq": event.seq}, now=now)
            self.counts["rekeyed"] += 1
