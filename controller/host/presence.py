"""Who is in the room, as the host agent learns it: signed by the dashboard, and directly from
the doors.

The dashboard publishes a **presence statement** retained on ``secroom/v1/{site}/presence``
whenever presence changes and at least every ``heartbeat_s``: the people inside now, and the
door nodes whose events the hosts may trust (name -> public key). It is signed with the
dashboard's policy key (the key every node already pins) under its own context, so a policy
signature is never a presence signature. Wire form::

    {"key_id": "<16 chars>", "presence": {...}, "sig": "<base64url Ed25519>"}

The agent also follows the doors' own ``door.access`` events: each is checked against the key
the statement gives for its node, and a granted tap newer than the statement moves the person
in or out at once (leaving by the out-reader locks that person's sessions before the dashboard
has even stored the tap), and keeps working while the dashboard is away.

``PresenceView.state(person, now)`` is ``in``, ``out`` or ``unknown``: unknown when there is no
statement, when it is older than ``max_age`` (the dashboard is gone, or the statement was
replayed) or from the future, unless a door event after it says where the person is.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from controller.envelope import (
    TOPIC_ROOT,
    EnvelopeError,
    b64u,
    canonical_json,
    parse,
    parse_ts,
    unb64u,
    verify_signature,
)
from controller.keys import key_id, public_from_b64

CONTEXT = b"secroom/v1/presence\n"
MAX_BYTES = 1024 * 1024
FUTURE_SKEW = timedelta(seconds=60)
Ident = str


def presence_topic(site: str) -> str:
    return f"{TOPIC_ROOT}/{site}/presence"


def door_events_topic(site: str) -> str:
    """Every node's door.access events (the broker's ACL lets host agents read them)."""
    return f"{TOPIC_ROOT}/{site}/+/events/door.access"


class PresenceError(Exception):
    """A presence statement or door event was refused; the message says why."""


class PresenceStatement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    site: str = Field(min_length=1, max_length=64)
    serial: int = Field(ge=1, description="increases with every statement")
    issued_at: AwareDatetime
    present: list[Ident] = Field(default_factory=list, max_length=20000)
    door_nodes: dict[str, str] = Field(default_factory=dict,
                                       description="node name -> base64url public key")
    heartbeat_s: float = Field(default=60.0, gt=0)


def sign_presence(statement: PresenceStatement, key: Ed25519PrivateKey) -> bytes:
    body = statement.model_dump(mode="json")
    sig = b64u(key.sign(CONTEXT + canonical_json(body)))
    return canonical_json({"key_id": key_id(key.public_key()), "presence": body, "sig": sig})


def open_presence(blob: bytes, trusted: Sequence[Ed25519PublicKey], *, site: str
                  ) -> PresenceStatement:
    """Check shape, signer, signature and site. Raises PresenceError."""
    if len(blob) > MAX_BYTES:
        raise PresenceError(f"presence statement of {len(blob)} bytes is too large")
    try:
        raw = json.loads(blob)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PresenceError("presence statement is not JSON") from exc
    if not isinstance(raw, dict) or set(raw) != {"key_id", "presence", "sig"}:
        raise PresenceError("not a signed presence statement")
    body, kid, sig = raw["presence"], raw["key_id"], raw["sig"]
    if not isinstance(body, dict) or not isinstance(kid, str) or not isinstance(sig, str):
        raise PresenceError("malformed presence statement")
    key = next((k for k in trusted if key_id(k) == kid), None)
    if key is None:
        raise PresenceError("presence statement signed by an untrusted key")
    try:
        key.verify(unb64u(sig), CONTEXT + canonical_json(body))
    except (InvalidSignature, ValueError) as exc:
        raise PresenceError("presence statement signature does not match") from exc
    try:
        statement = PresenceStatement.model_validate(body)
    except ValidationError as exc:
        raise PresenceError(f"malformed presence statement: {exc.errors()[0]['msg']}") from exc
    if statement.site != site:
        raise PresenceError(f"presence statement is for site {statement.site!r}")
    return statement


@dataclass(frozen=True)
class DoorMove:
    """A granted tap at a door, from that door node's own signed event."""

    person_id: str
    direction: str  # in | out
    at: datetime
    door: str
    ref: str  # node:seq


def door_moves(payload: bytes, statement: PresenceStatement | None, *, site: str
               ) -> list[DoorMove]:
    """The people a door.access event moves (both of a two-person grant), once its signature
    checks out against the key the statement gives for its node. Raises PresenceError."""
    if statement is None:
        raise PresenceError("no presence statement yet: door nodes' keys unknown")
    try:
        event = parse(payload)
    except EnvelopeError as exc:
        raise PresenceError(f"door event refused: {exc}") from exc
    if event.site != site or event.kind != "door.access":
        raise PresenceError("not a door.access event of this site")
    key_text = statement.door_nodes.get(event.node)
    if key_text is None:
        raise PresenceError(f"door node {event.node!r} is not vouched for by the dashboard")
    try:
        verify_signature(event, public_from_b64(key_text))
    except (EnvelopeError, ValueError) as exc:
        raise PresenceError(f"door event refused: {exc}") from exc
    d = event.data
    if d.get("granted") is not True or d.get("direction") not in ("in", "out"):
        return []
    at = parse_ts(event.ts)
    people = [p for p in (d.get("person_id"), d.get("second_person_id")) if isinstance(p, str)]
    return [DoorMove(p, d["direction"], at, str(d.get("door", "")), event.id) for p in people]


class PresenceView:
    """The agent's knowledge of presence: the latest statement and door moves after it.

    Thread-safe; ``offer``/``move`` return what changed so the agent can lock sessions."""

    def __init__(self, *, max_age_s: float) -> None:
        self.max_age = timedelta(seconds=max_age_s)
        self._lock = threading.Lock()
        self._statement: PresenceStatement | None = None
        self._present: frozenset[str] = frozenset()
        self._moves: dict[str, DoorMove] = {}
        self.refused = 0

    @property
    def statement(self) -> PresenceStatement | None:
        return self._statement

    def offer(self, statement: PresenceStatement, now: datetime) -> list[str]:
        """Take a newer statement; return the people it shows out who were in before."""
        with self._lock:
            old = self._statement
            if old is not None and statement.serial <= old.serial:
                return []
            before = {p for p in self._known_people() if self._state(p, now) == "in"}
            self._statement = statement
            self._present = frozenset(statement.present)
            self._moves = {p: m for p, m in self._moves.items() if m.at > statement.issued_at}
            return sorted(p for p in before if self._state(p, now) == "out")

    def move(self, moves: Sequence[DoorMove]) -> list[str]:
        """Apply door moves; return the people who just left."""
        left = []
        with self._lock:
            for m in moves:
                last = self._moves.get(m.person_id)
                if last is not None and last.at >= m.at:
                    continue
                st = self._statement
                if st is not None and m.at <= st.issued_at:
                    continue
                self._moves[m.person_id] = m
                if m.direction == "out":
                    left.append(m.person_id)
        return left

    def fresh(self, now: datetime) -> bool:
        st = self._statement
        return st is not None and self._fresh(st, now)

    def _fresh(self, st: PresenceStatement, now: datetime) -> bool:
        return st.issued_at - FUTURE_SKEW <= now <= st.issued_at + self.max_age

    def state(self, person_id: str, now: datetime) -> str:
        with self._lock:
            return self._state(person_id, now)

    def _known_people(self) -> set[str]:
        st = self._statement
        return set(st.present if st else ()) | set(self._moves)

    def _state(self, person_id: str, now: datetime) -> str:
        move = self._moves.get(person_id)
        st = self._statement
        if move is not None and (st is None or move.at > st.issued_at) and move.at <= now + \
                FUTURE_SKEW:
            return move.direction
        if st is None or not self._fresh(st, now):
            return "unknown"
        return "in" if person_id in self._present else "out"
