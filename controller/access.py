"""Pure access decisions: may this card open this door, in this direction, now?

No I/O and no clock: the caller passes the policy, the current ``AccessState`` and ``now``, and
gets back a ``Decision`` and the next state. Every denial carries a ``Denial`` reason.

Checks, in order (the first failing one is the reason):

1. no policy loaded -> ``no_policy``; past its ``expires_at`` -> ``policy_stale`` (unless the
   node keeps its last good policy: ``honour_expiry=False``)
2. lockdown of this door (entry only) -> ``lockdown``
3. card not in the policy -> ``unknown_card``; the card did not prove its key although it
   was enrolled with one, or a checkable card failed its check -> ``credential_failed``;
   a UID-only card at a door with ``require_verified`` -> ``credential_weak``;
   person inactive -> ``inactive``;
   before ``valid_from`` -> ``not_yet_valid``; after ``valid_until`` -> ``expired``
   (dates judged in the site's local time zone; ``valid_until`` inclusive)
4. no group of the person names this door -> ``not_permitted``
5. entry only: no such group is inside its windows now (holidays need ``on_holidays``)
   -> ``outside_schedule``
6. door with anti-passback: the same direction twice in a row -> ``anti_passback``
   (no presence record yet, e.g. after a restart, passes)
7. entry at a two-person door: the first authorised card is held as pending
   (``awaiting_second_person``, ``pending=True``); a *different* authorised person within
   ``two_person_window_s`` opens it; the same person again -> ``same_person_twice``; after
   the window the pending card is forgotten and the new card becomes the first.

Exits (direction ``out``) are never held by lockdown, schedule or the two-person rule: nobody
is trapped in the room, and egress also works through REX or the mechanical lever. Exits still
need a valid card with a right to the door, so the record names a person.

Presence (person -> last direction) follows from every granted tap, both persons of a pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from pydantic import BaseModel

from controller.events import DoorAccess, DoorTwoPersonPending
from controller.policy import Person, Policy, normalise_uid
from controller.schedule import group_open_at, local_time


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class Denial(StrEnum):
    UNKNOWN_CARD = "unknown_card"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    NOT_PERMITTED = "not_permitted"
    OUTSIDE_SCHEDULE = "outside_schedule"
    ANTI_PASSBACK = "anti_passback"
    AWAITING_SECOND = "awaiting_second_person"
    SAME_PERSON_TWICE = "same_person_twice"
    LOCKDOWN = "lockdown"
    NO_POLICY = "no_policy"
    POLICY_STALE = "policy_stale"
    CREDENTIAL_FAILED = "credential_failed"
    CREDENTIAL_WEAK = "credential_weak"


class Strength(StrEnum):
    """How far the card proved itself (readers.verify.base.Strength, by value)."""

    VERIFIED = "verified"
    WEAK = "weak"
    FAILED = "failed"


@dataclass(frozen=True)
class AccessRequest:
    door: str
    direction: Direction
    uid: str
    reader: str
    credential: Strength = Strength.WEAK
    card_type: str = "uid"
    credential_key: str | None = None
    credential_detail: str = ""  # the verifier's reason, safe to log (status words, step)


@dataclass(frozen=True)
class Decision:
    """``person_id`` is whoever presented the card now; in a two-person grant
    ``second_person_id`` is the partner whose card was presented first."""

    granted: bool
    reason: Denial | None
    person_id: str | None
    door: str
    direction: Direction
    second_person_id: str | None = None
    pending: bool = False  # first card of a two-person pair

    def __post_init__(self) -> None:
        if self.granted == (self.reason is not None):
            raise ValueError("a grant has no reason and every denial has one")


def _frozen(mapping: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class AccessState:
    """Immutable: ``decide`` returns a new state instead of changing this one."""

    presence: Mapping[str, Direction] = field(default_factory=lambda: MappingProxyType({}))
    pending_two_person: Mapping[str, tuple[str, datetime]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "presence", _frozen(self.presence))
        object.__setattr__(self, "pending_two_person", _frozen(self.pending_two_person))

    def inside(self) -> list[str]:
        """People whose last granted tap was an entry."""
        return sorted(p for p, d in self.presence.items() if d == Direction.IN)


def person_for_card(policy: Policy | None, uid: str) -> Person | None:
    return policy.person_for_card(uid) if policy is not None else None


def credential_holds(policy: Policy, uid: str, credential: Strength) -> bool:
    """False when the card failed its check, or was enrolled verified and did not prove its
    key now (a copy of its UID): ``credential_failed`` at a door, nothing released at a
    printer."""
    if credential is Strength.FAILED:
        return False
    return credential is Strength.VERIFIED or not policy.card_enrolled_verified(uid)


def person_denial(person: Person, today: date) -> Denial | None:
    """Why ``person`` may not use anything on ``today`` (site-local date), or None."""
    if not person.active:
        return Denial.INACTIVE
    if person.valid_from is not None and today < person.valid_from:
        return Denial.NOT_YET_VALID
    if person.valid_until is not None and today > person.valid_until:
        return Denial.EXPIRED
    return None


def decide(
    policy: Policy | None, state: AccessState, req: AccessRequest, now: datetime, *,
    honour_expiry: bool = True,
) -> tuple[Decision, AccessState]:
    """Decide one card presentation. Raises ValueError only for a naive ``now``."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")

    def deny(reason: Denial, person: Person | None = None) -> tuple[Decision, AccessState]:
        who = person.id if person else None
        return Decision(False, reason, who, req.door, req.direction), state

    if policy is None:
        return deny(Denial.NO_POLICY)
    if honour_expiry and policy.expired(now):
        return deny(Denial.POLICY_STALE)
    person = policy.person_for_card(req.uid)
    entering = req.direction is Direction.IN
    if entering and policy.is_locked_down(req.door):
        return deny(Denial.LOCKDOWN, person)
    if person is None:
        return deny(Denial.UNKNOWN_CARD)
    if not credential_holds(policy, req.uid, req.credential):
        return deny(Denial.CREDENTIAL_FAILED, person)
    door_rule = policy.door(req.door)
    if door_rule and door_rule.require_verified and req.credential is not Strength.VERIFIED:
        return deny(Denial.CREDENTIAL_WEAK, person)
    local = local_time(now, policy.tz)
    bad = person_denial(person, local.date())
    if bad is not None:
        return deny(bad, person)
    door = policy.door(req.door)
    groups = [g for gid in person.groups if (g := policy.group(gid)) and req.door in g.doors]
    if door is None or not groups:
        return deny(Denial.NOT_PERMITTED, person)
    if entering and not any(group_open_at(g, local) for g in groups):
        return deny(Denial.OUTSIDE_SCHEDULE, person)
    if door.anti_passback and state.presence.get(person.id) == req.direction:
        return deny(Denial.ANTI_PASSBACK, person)

    partner: str | None = None
    if door.two_person and entering:
        pending = state.pending_two_person.get(req.door)
        live = pending is not None and timedelta(0) <= now - pending[1] <= timedelta(
            seconds=door.two_person_window_s
        )
        if pending is None or not live:
            waiting = dict(state.pending_two_person)
            waiting[req.door] = (person.id, now)
            decision = Decision(
                False, Denial.AWAITING_SECOND, person.id, req.door, req.direction, pending=True
            )
            return decision, AccessState(state.presence, waiting)
        if pending[0] == person.id:
            return deny(Denial.SAME_PERSON_TWICE, person)
        partner = pending[0]

    presence = dict(state.presence)
    presence[person.id] = req.direction
    waiting = dict(state.pending_two_person)
    if partner is not None:
        presence[partner] = req.direction
        del waiting[req.door]
    decision = Decision(True, None, person.id, req.door, req.direction, second_person_id=partner)
    return decision, AccessState(presence, waiting)


def may_print(policy: Policy | None, person_id: str, printer: str, now: datetime) -> Denial | None:
    """None if ``person_id`` may release jobs on ``printer`` now, else the reason.

    Same rules as a door entry: active, valid dates, a group naming the printer, inside that
    group's windows. An unknown person is reported as ``unknown_card``.
    """
    if policy is None:
        return Denial.NO_POLICY
    person = policy.person(person_id)
    if person is None:
        return Denial.UNKNOWN_CARD
    local = local_time(now, policy.tz)
    bad = person_denial(person, local.date())
    if bad is not None:
        return bad
    groups = [g for gid in person.groups if (g := policy.group(gid)) and printer in g.printers]
    if printer not in policy.printers or not groups:
        return Denial.NOT_PERMITTED
    if not any(group_open_at(g, local) for g in groups):
        return Denial.OUTSIDE_SCHEDULE
    return None


def access_events(
    decision: Decision, req: AccessRequest, policy: Policy | None
) -> list[tuple[str, BaseModel]]:
    """The events one decision produces: door.access, plus door.two_person_pending if held."""
    try:
        card: str | None = normalise_uid(req.uid)
    except ValueError:
        card = None
    events: list[tuple[str, BaseModel]] = [
        (
            "door.access",
            DoorAccess(
                door=req.door,
                reader=req.reader,
                direction=req.direction.value,
                granted=decision.granted,
                reason=decision.reason.value if decision.reason else None,
                person_id=decision.person_id,
                second_person_id=decision.second_person_id,
                card=card,
                policy_version=policy.version if policy else None,
                credential=req.credential.value,
                card_type=req.card_type,  # type: ignore[arg-type]
                credential_key=req.credential_key,
                credential_detail=(req.credential_detail[:160] or None)
                if req.credential is not Strength.VERIFIED else None,
            ),
        )
    ]
    if decision.pending and decision.person_id and policy is not None:
        rule = policy.door(req.door)
        window = rule.two_person_window_s if rule else 0
        events.append(
            (
                "door.two_person_pending",
                DoorTwoPersonPending(
                    door=req.door,
                    reader=req.reader,
                    person_id=decision.person_id,
                    window_s=window,
                ),
            )
        )
    return events
