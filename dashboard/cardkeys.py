"""Site card master keys: generated here, sealed at rest, never in a log, an event or a page.

A key is 32 random bytes (controller.card_keys.new_site_key). The row keeps it sealed with
AES-256-GCM under a key derived from the dashboard's policy signing key, so a copy of the
database alone opens none. Nodes receive the keys only inside their signed slice, sealed again
to each node (controller.card_keys). Rotation: ``rotate`` makes a new active key and keeps the
old one as ``previous``; both go to the nodes, so cards still on the old key keep opening while
they are re-keyed at a reader; ``retire_previous`` ends the changeover (the secret is wiped).
Every change is audited by key id. ``key_statuses`` and ``cards_on_previous`` tell how far a
changeover is: the cards on each key (a card row carries the key id it holds; the node's
``card.rekeyed`` moves it, dashboard.card_enrol) and the people whose cards still hold the
previous key, so the admin knows when retiring it locks nobody out.

The keys are the whole dashboard's: every site's door nodes carry the same ones (a person's
card opens verified-only doors at each site where a group grants them), so counts may be
narrowed to one site's people but a rotation or a retirement changes every site.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.card_keys import new_site_key
from controller.envelope import b64u, unb64u
from controller.keys import derive_secret
from dashboard.audit import append_audit
from dashboard.models.cardkeys import CardMasterKey
from dashboard.models.events import DoorAccess
from dashboard.models.people import Card, Person
from dashboard.services.base import mark_policy_dirty
from readers.verify.base import SiteKey


class CardKeyError(ValueError):
    """A key action is not possible now (say which and what to do). ``code`` names the case
    for a page's words: changeover, no_previous, cards_left, sealed."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def _aead(signing_key: Ed25519PrivateKey) -> AESGCM:
    return AESGCM(derive_secret(signing_key, "card-master-keys at rest"))


def _seal(signing_key: Ed25519PrivateKey, key: SiteKey) -> str:
    nonce = os.urandom(12)
    return b64u(nonce + _aead(signing_key).encrypt(nonce, key.secret, key.key_id.encode()))


def _open(signing_key: Ed25519PrivateKey, row: CardMasterKey) -> SiteKey:
    raw = unb64u(row.sealed or "")
    try:
        secret = _aead(signing_key).decrypt(raw[:12], raw[12:], row.key_id.encode())
    except (InvalidTag, ValueError) as exc:
        raise CardKeyError(f"card key {row.key_id} does not open with this dashboard's signing "
                           "key (restored with another key?)", "sealed") from exc
    return SiteKey(row.key_id, secret)


def _rows(session: Session, *states: str) -> list[CardMasterKey]:
    return list(session.scalars(select(CardMasterKey).where(CardMasterKey.state.in_(states))
                                .order_by(CardMasterKey.created_at.desc())))


def key_ids(session: Session) -> list[str]:
    """Ids of the keys the nodes get, newest first (active, then previous)."""
    return [r.key_id for r in sorted(_rows(session, "active", "previous"),
                                     key=lambda r: r.state != "active")]


def site_keys(session: Session, signing_key: Ed25519PrivateKey,
              ids: list[str] | None = None) -> list[SiteKey]:
    """The keys (active first) to seal into the slices; only ``ids`` when given."""
    wanted = key_ids(session) if ids is None else ids
    rows = {r.key_id: r for r in _rows(session, "active", "previous")}
    return [_open(signing_key, rows[i]) for i in wanted if i in rows]


def rotate(session: Session, signing_key: Ed25519PrivateKey, *, actor: str,
           now: datetime) -> str:
    """A new active key (the first one, or a rotation: the active one becomes previous)."""
    if _rows(session, "previous"):
        raise CardKeyError("a changeover is still running: re-key the cards still on the "
                           "previous key, then retire it before the next rotation", "changeover")
    before = key_ids(session)
    for row in _rows(session, "active"):
        row.state = "previous"
    key = new_site_key()
    session.add(CardMasterKey(key_id=key.key_id, state="active", sealed=_seal(signing_key, key),
                              created_at=now, created_by=actor))
    session.flush()
    append_audit(session, actor=actor, action="card_key.rotate", target_type="card_key",
                 target_id=key.key_id, before={"keys": before},
                 after={"keys": key_ids(session)}, now=now)
    mark_policy_dirty(session, now)  # the next version carries the new key
    return key.key_id


def retire_previous(session: Session, *, actor: str, now: datetime,
                    accept_cards_left: int | None = None) -> str:
    """End the changeover: the previous key is no longer sent; its secret is wiped.

    The cards still on it (every site's) stop opening verified-only doors; the audit row says
    how many. With ``accept_cards_left`` (what the admin confirmed), more left is refused."""
    rows = _rows(session, "previous")
    if not rows:
        raise CardKeyError("no previous card key to retire", "no_previous")
    left = card_counts(session)
    for row in rows:
        if accept_cards_left is not None and left.get(row.key_id, 0) > accept_cards_left:
            raise CardKeyError(f"{left.get(row.key_id, 0)} cards are still on card key "
                               f"{row.key_id}: confirm that they stop opening verified-only "
                               "doors, or have them tapped at a reader first", "cards_left")
        row.state, row.sealed, row.retired_at = "retired", None, now
        append_audit(session, actor=actor, action="card_key.retire", target_type="card_key",
                     target_id=row.key_id, before={"state": "previous"},
                     after={"state": "retired", "cards_left": left.get(row.key_id, 0)},
                     now=now)
    mark_policy_dirty(session, now)
    return rows[0].key_id


# -- how far a changeover is -----------------------------------------------------------------

@dataclass(frozen=True)
class KeyStatus:
    key_id: str
    state: str  # active, previous, retired
    created_at: datetime
    created_by: str
    retired_at: datetime | None
    cards: int  # active cards on it (of one site's people, when counted for a site)


@dataclass(frozen=True)
class CardOnPrevious:
    person_id: str
    uid: str
    credential: str  # desfire, felica_lite_s
    last_opened: datetime | None  # the card's last granted door tap, if the dashboard has one


def card_counts(session: Session, site: str | None = None) -> dict[str, int]:
    """Active cards per key id (every site's, or ``site``'s people's)."""
    q = (select(Card.key_id, func.count()).where(Card.active.is_(True), Card.key_id.is_not(None))
         .group_by(Card.key_id))
    if site is not None:
        q = q.join(Person, Person.id == Card.person_id).where(Person.site == site)
    return {str(k): int(n) for k, n in session.execute(q)}


def key_statuses(session: Session, site: str | None = None) -> list[KeyStatus]:
    """Every key, newest first, with its count of cards (every site's, or ``site``'s)."""
    counts = card_counts(session, site)
    return [KeyStatus(r.key_id, r.state, r.created_at, r.created_by, r.retired_at,
                      counts.get(r.key_id, 0))
            for r in session.scalars(select(CardMasterKey)
                                     .order_by(CardMasterKey.created_at.desc(),
                                               CardMasterKey.key_id))]


def cards_on_previous(session: Session, site: str | None = None) -> list[CardOnPrevious]:
    """The active cards still on the previous key (of ``site``'s people when given), by
    person, each with its last granted door tap."""
    previous = [r.key_id for r in _rows(session, "previous")]
    if not previous:
        return []
    q = (select(Card.person_id, Card.uid, Card.credential)
         .join(Person, Person.id == Card.person_id)
         .where(Card.active.is_(True), Card.key_id.in_(previous)))
    if site is not None:
        q = q.where(Person.site == site)
    cards = q.subquery()
    # by person first: door_access is indexed by (person_id, ts), not by card
    last: dict[str | None, datetime] = {uid: ts for uid, ts in session.execute(
        select(DoorAccess.uid, func.max(DoorAccess.ts))
        .where(DoorAccess.granted.is_(True),
               DoorAccess.person_id.in_(select(cards.c.person_id)),
               DoorAccess.uid.in_(select(cards.c.uid)))
        .group_by(DoorAccess.uid))}
    rows = session.execute(q.order_by(Person.name, Card.person_id, Card.uid)).all()
    return [CardOnPrevious(c.person_id, c.uid, c.credential, last.get(c.uid)) for c in rows]
