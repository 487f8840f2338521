"""Cards: enrol (e.g. the UID of the next tap at a chosen reader) and revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from controller.policy import normalise_uid
from dashboard.models.people import Card
from dashboard.services.base import (
    Conflict,
    NotFound,
    ServiceError,
    check_actor,
    rights_changed,
    visible,
    when,
)
from dashboard.services.people import get_person
from dashboard.textguard import guard_text


def card_dict(c: Card) -> dict[str, Any]:
    return {
        "uid": c.uid,
        "person_id": c.person_id,
        "label": c.label,
        "active": c.active,
        "enrolled_at": c.enrolled_at,
        "enrolled_by": c.enrolled_by,
        "revoked_at": c.revoked_at,
        "credential": c.credential,
        "key_id": c.key_id,
    }


CREDENTIALS = ("uid", "desfire", "felica_lite_s")


def _uid(uid: str) -> str:
    if not isinstance(uid, str):
        raise ServiceError("card UID must be a string of hex digits")
    try:
        return normalise_uid(uid)
    except ValueError as exc:
        raise ServiceError(str(exc)) from exc


def enrol_card(
    session: Session,
    actor: str,
    person_id: str,
    uid: str,
    *,
    label: str = "",
    now: datetime | None = None,
    presented: dict[str, Any] | None = None,
    credential: str = "uid",
    key_id: str | None = None,
    within: str | None = None,
) -> Card:
    """Issue card ``uid`` to a person. A revoked card may be re-issued; an active one may not.
    ``presented`` (where and when the card was tapped, for an enrolment by a tap) goes into
    the audit record. ``credential``: "uid" (weak) or the card type that proved a secroom key
    at the tap ("desfire", "felica_lite_s"; it must prove it at every reader from now on)."""
    check_actor(actor)
    if credential not in CREDENTIALS:
        raise ServiceError(f"card credential must be one of {', '.join(CREDENTIALS)}")
    at = when(now)
    norm = _uid(uid)
    label = guard_text(label, "label")
    if len(label) > 128:
        raise ServiceError("card label is longer than 128 characters")
    person = get_person(session, person_id, within)
    card = session.get(Card, norm)
    before = card_dict(card) if card is not None else None
    if card is not None:
        if card.active:
            owner = ("this person" if card.person_id == person.id else
                     f"person {card.person_id!r}" if within is None else "someone else")
            raise Conflict(f"card {norm} is already enrolled to {owner}; revoke it first")
        card.person_id, card.active, card.revoked_at = person.id, True, None
        card.label, card.enrolled_at, card.enrolled_by = label, at, actor
        card.credential, card.key_id = credential, key_id
    else:
        card = Card(
            uid=norm,
            person_id=person.id,
            label=label,
            active=True,
            enrolled_at=at,
            enrolled_by=actor,
            credential=credential,
            key_id=key_id,
        )
        session.add(card)
    session.flush()
    after = card_dict(card) | ({"presented": presented} if presented else {})
    rights_changed(session, actor, "card.enrol", "card", norm, before, after, at)
    return card


def revoke_card(session: Session, actor: str, uid: str, *, now: datetime | None = None,
                within: str | None = None) -> Card:
    """Stop a card opening anything (kept for the history of who held it). ``within``: a
    site's editor revokes its own site's people's cards only."""
    check_actor(actor)
    at = when(now)
    norm = _uid(uid)
    card = session.get(Card, norm)
    if card is None or not visible(card.person.site, within):
        raise NotFound(f"no card {norm}")
    if not card.active:
        raise Conflict(f"card {norm} is already revoked")
    before = card_dict(card)
    card.active, card.revoked_at = False, at
    session.flush()
    rights_changed(session, actor, "card.revoke", "card", norm, before, card_dict(card), at)
    return card
