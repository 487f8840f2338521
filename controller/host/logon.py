"""Pure log-on decisions at a room PC: may this account log on here, with the card lying on the
reader, now? No I/O and no clock: the caller passes the policy, the cards on the readers, the
presence it knows and ``now``.

Checks, in order (the first failing one is the reason, as for doors in controller.access):

1. a remote service (PAM_RHOST set, or a service listed as remote) -> ``remote``: the card is
   never a factor for a log-in from elsewhere
2. a break-glass account -> granted without a card (``break_glass``; every use is raised)
3. no policy -> ``no_policy``; no card reader connected -> ``no_reader``; no card on a reader
   -> ``no_card``
4. for each card lying on a reader: unknown -> ``unknown_card``; the holder inactive, not yet
   valid or expired (site-local date); the account is not one of the holder's host accounts ->
   ``wrong_account``; no group of the holder names this host -> ``not_permitted``; no such
   group inside its windows now -> ``outside_schedule``; the holder's presence: ``out`` ->
   ``not_in_room``, ``unknown`` -> ``presence_unknown`` unless the setting allows it (then
   granted with presence ``unknown``, which the dashboard raises)
   The first card that passes grants; otherwise the reason of the card whose holder owns the
   account (else the first card) is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.access import person_denial
from controller.policy import Person, Policy
from controller.schedule import group_open_at, local_time


@dataclass(frozen=True)
class LogonRequest:
    account: str
    service: str
    host: str
    tty: str = ""
    rhost: str = ""


@dataclass(frozen=True)
class CardOnReader:
    reader: str
    uid: str


@dataclass(frozen=True)
class LogonRules:
    """The settings a decision needs (from ``[host]``)."""

    remote_services: frozenset[str] = frozenset({"sshd"})
    break_glass_accounts: frozenset[str] = frozenset()
    presence_unknown: str = "deny"  # or "allow"


@dataclass(frozen=True)
class LogonDecision:
    granted: bool
    reason: str | None
    person_id: str | None = None
    card: str | None = None
    reader: str | None = None
    presence: str | None = None
    break_glass: bool = False

    def __post_init__(self) -> None:
        if self.granted == (self.reason is not None):
            raise ValueError("a grant has no reason and every denial has one")


def is_remote(req: LogonRequest, rules: LogonRules) -> bool:
    return bool(req.rhost.strip()) or req.service in rules.remote_services


def is_admin(policy: Policy | None, person: Person | None, host: str) -> bool | None:
    """Has ``person`` the administrator's right on ``host`` (a group naming the host with
    ``host_admin``)? None when nobody is known."""
    if policy is None or person is None:
        return None
    return any((g := policy.group(gid)) is not None and g.host_admin and host in g.hosts
               for gid in person.groups)


def decide_logon(
    policy: Policy | None,
    req: LogonRequest,
    cards: Sequence[CardOnReader],
    readers: int,
    presence: Callable[[str], str] | Mapping[str, str],
    now: datetime,
    rules: LogonRules,
) -> LogonDecision:
    """Decide one log-on request. Raises ValueError only for a naive ``now``."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if is_remote(req, rules):
        return LogonDecision(False, "remote")
    if req.account in rules.break_glass_accounts:
        return LogonDecision(True, None, break_glass=True)
    if policy is None:
        return LogonDecision(False, "no_policy")
    if readers <= 0:
        return LogonDecision(False, "no_reader")
    if not cards:
        return LogonDecision(False, "no_card")
    where = presence.get if isinstance(presence, Mapping) else presence
    denials: list[tuple[bool, LogonDecision]] = []
    for card in cards:
        decision, owner = _card_decision(policy, req, card, where, now, rules)
        if decision.granted:
            return decision
        denials.append((owner, decision))
    return next((d for owner, d in denials if owner), denials[0][1])


def _card_decision(policy: Policy, req: LogonRequest, card: CardOnReader,
                   where: Callable[[str], str | None], now: datetime, rules: LogonRules
                   ) -> tuple[LogonDecision, bool]:
    """The decision for one card, and whether its holder owns the requested account."""
    person = policy.person_for_card(card.uid)

    def deny(reason: str, presence: str | None = None) -> tuple[LogonDecision, bool]:
        owner = person is not None and req.account in person.host_accounts
        return LogonDecision(False, reason, person.id if person else None, card.uid,
                             card.reader, presence), owner

    if person is None:
        return deny("unknown_card")
    local = local_time(now, policy.tz)
    bad = person_denial(person, local.date())
    if bad is not None:
        return deny(bad.value)
    if req.account not in person.host_accounts:
        return deny("wrong_account")
    groups = [g for gid in person.groups if (g := policy.group(gid)) and req.host in g.hosts]
    if not groups:
        return deny("not_permitted")
    if not any(group_open_at(g, local) for g in groups):
        return deny("outside_schedule")
    state = where(person.id) or "unknown"
    if state == "out":
        return deny("not_in_room", state)
    if state != "in" and rules.presence_unknown != "allow":
        return deny("presence_unknown", "unknown")
    return LogonDecision(True, None, person.id, card.uid, card.reader,
                         "in" if state == "in" else "unknown"), True
