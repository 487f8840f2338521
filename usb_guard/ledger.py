"""The media ledger as pure logic: control numbers, the lifecycle, audit records, overdue media.

No storage and no clock here: the dashboard keeps the records (SQLAlchemy) and passes ``now``.
Every operation takes the current ``Medium`` and returns a ``Transition``: the new ``Medium`` and
the ``AuditRecord`` to store with it. A transition the lifecycle does not allow raises
``LedgerError`` naming the state and what is allowed from it.

    registered ──store──> in_storage ──check_out──> checked_out ──return──> returned
         │                 ^   │                                              │
         │                 │   └──wipe──> wiped <──────────wipe───────────────┤
         │                 └────store─────┘ │                                 │
         │                 ^────────────store───────────────────────────────────┘
    any state in hand ──mark_lost──> lost ──found──> returned
    in_storage / returned / wiped ──dispose──> disposed (terminal)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from usb_guard.errors import LedgerError
from usb_guard.policy import (
    DEFAULT_CLASS_RULES,
    DEFAULT_USABLE_STATES,
    ClassRule,
    MediaState,
    MediumIdentity,
    RegisteredMedium,
    RuleAction,
    UsbPolicy,
)

SanitizationMethod = Literal["Clear", "Purge", "Destroy"]
SANITIZATION_METHODS: tuple[SanitizationMethod, ...] = ("Clear", "Purge", "Destroy")

# action -> (states it may start from, state it leads to)
TRANSITIONS: Mapping[str, tuple[frozenset[MediaState], MediaState]] = {
    "store": (frozenset({"registered", "returned", "wiped"}), "in_storage"),
    "check_out": (frozenset({"in_storage"}), "checked_out"),
    "return": (frozenset({"checked_out"}), "returned"),
    "wipe": (frozenset({"registered", "in_storage", "returned"}), "wiped"),
    "mark_lost": (frozenset({"registered", "in_storage", "checked_out", "returned", "wiped"}),
                  "lost"),
    "found": (frozenset({"lost"}), "returned"),
    "dispose": (frozenset({"in_storage", "returned", "wiped"}), "disposed"),
}


@dataclass(frozen=True)
class ControlNumbering:
    """Control numbers such as USB-0001: a prefix and a zero-padded sequence number.

    The caller keeps the highest number ever issued (not the highest still in the ledger), so a
    number is never issued twice, even after its medium was disposed of or deleted.
    """

    prefix: str = "USB-"
    width: int = 4

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{0,16}", self.prefix):
            raise LedgerError(f"control number prefix {self.prefix!r} must be letters, digits, -_.")
        if not 1 <= self.width <= 12:
            raise LedgerError("control number width must be 1..12")

    def format(self, number: int) -> str:
        if number < 1:
            raise LedgerError("control numbers start at 1")
        return f"{self.prefix}{number:0{self.width}d}"

    def parse(self, control_number: str) -> int:
        rest = control_number.removeprefix(self.prefix)
        if (rest == control_number and self.prefix) or not rest.isdigit():
            raise LedgerError(f"{control_number!r} is not a control number {self.prefix}NNNN")
        return int(rest)

    def allocate(self, highest_issued: int) -> tuple[str, int]:
        """The next control number and the new highest-issued value to store with it."""
        if highest_issued < 0:
            raise LedgerError("highest issued control number cannot be negative")
        number = highest_issued + 1
        return self.format(number), number


@dataclass(frozen=True)
class Checkout:
    holder: str
    purpose: str
    due_back: datetime
    requested_by: str
    approved_by: str
    checked_out_at: datetime


@dataclass(frozen=True)
class WipeRecord:
    method: SanitizationMethod
    tool: str
    performed_by: str
    verifier: str
    verification: str
    wiped_at: datetime


@dataclass(frozen=True)
class DisposalRecord:
    method: SanitizationMethod
    certificate_number: str
    performed_by: str
    disposed_at: datetime


@dataclass(frozen=True)
class Medium:
    control_number: str
    identity: MediumIdentity
    token_digest: str
    state: MediaState
    custodian: str
    make: str
    model: str
    registered_at: datetime
    media_type: str = "USB flash drive"
    hosts: tuple[str, ...] = ()
    read_only: bool = False
    checkout: Checkout | None = None
    last_wipe: WipeRecord | None = None
    disposal: DisposalRecord | None = None
    lost_at: datetime | None = None


@dataclass(frozen=True)
class AuditRecord:
    control_number: str
    action: str
    from_state: MediaState | None
    to_state: MediaState
    actor: str
    at: datetime
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Transition:
    medium: Medium
    audit: AuditRecord


@dataclass(frozen=True)
class OverdueMedium:
    control_number: str
    holder: str
    due_back: datetime
    overdue_by: timedelta


def _text(value: str, what: str) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        raise LedgerError(f"{what} is required")
    if len(value) > 200:
        raise LedgerError(f"{what} is longer than 200 characters")
    return value


def _aware(when: datetime, what: str) -> datetime:
    if when.tzinfo is None:
        raise LedgerError(f"{what} must be timezone-aware")
    return when


def _move(medium: Medium, action: str, actor: str, now: datetime,
          details: dict[str, str] | None = None, **changes: object) -> Transition:
    allowed_from, target = TRANSITIONS[action]
    if medium.state not in allowed_from:
        possible = sorted(a for a, (froms, _) in TRANSITIONS.items() if medium.state in froms)
        raise LedgerError(
            f"{medium.control_number} is {medium.state}: cannot {action.replace('_', ' ')} "
            f"(allowed now: {', '.join(possible) or 'nothing, the medium is disposed of'})"
        )
    actor = _text(actor, "the acting person")
    _aware(now, "now")
    new = replace(medium, state=target, **changes)  # type: ignore[arg-type]
    audit = AuditRecord(medium.control_number, action, medium.state, target, actor, now,
                        tuple(sorted((details or {}).items())))
    return Transition(new, audit)


def register(control_number: str, identity: MediumIdentity, token_digest: str, *, make: str,
             model: str, custodian: str, actor: str, now: datetime,
             hosts: Iterable[str] = (), read_only: bool = False,
             media_type: str = "USB flash drive") -> Transition:
    if not re.fullmatch(r"[0-9a-f]{64}", token_digest):
        raise LedgerError("token digest must be 64 lowercase hex digits")
    medium = Medium(control_number, identity, token_digest, "registered",
                    _text(custodian, "custodian"), _text(make, "make"), _text(model, "model"),
                    _aware(now, "now"), _text(media_type, "media type"),
                    tuple(_text(h, "host") for h in hosts), read_only)
    audit = AuditRecord(control_number, "register", None, "registered", _text(actor, "actor"),
                        now, (("custodian", medium.custodian), ("hosts", ",".join(medium.hosts))))
    return Transition(medium, audit)


def store(medium: Medium, *, actor: str, now: datetime) -> Transition:
    return _move(medium, "store", actor, now, checkout=None)


def check_out(medium: Medium, *, holder: str, purpose: str, due_back: datetime,
              requested_by: str, approved_by: str, now: datetime) -> Transition:
    holder, purpose = _text(holder, "holder"), _text(purpose, "purpose")
    requested_by, approved_by = _text(requested_by, "requester"), _text(approved_by, "approver")
    if approved_by == requested_by:
        raise LedgerError("the approver must be a second person, not the requester")
    if approved_by == holder:
        raise LedgerError("the approver cannot approve a check-out to themselves")
    if _aware(due_back, "due back") <= _aware(now, "now"):
        raise LedgerError("due back must be in the future")
    checkout = Checkout(holder, purpose, due_back, requested_by, approved_by, now)
    details = {"holder": holder, "purpose": purpose, "due_back": due_back.isoformat(),
               "requested_by": requested_by, "approved_by": approved_by}
    return _move(medium, "check_out", requested_by, now, details, checkout=checkout)


def return_medium(medium: Medium, *, actor: str, now: datetime, note: str = "") -> Transition:
    details = {"note": note} if note else {}
    if medium.checkout is not None:
        details["late"] = "yes" if now > medium.checkout.due_back else "no"
    return _move(medium, "return", actor, now, details)


def wipe(medium: Medium, *, method: SanitizationMethod, tool: str, performed_by: str,
         verifier: str, verification: str, now: datetime) -> Transition:
    if method not in SANITIZATION_METHODS:
        raise LedgerError(f"sanitisation method must be one of {', '.join(SANITIZATION_METHODS)}")
    record = WipeRecord(method, _text(tool, "tool"), _text(performed_by, "performer"),
                        _text(verifier, "verifier"), _text(verification, "verification"), now)
    if record.verifier == record.performed_by:
        raise LedgerError("the verifier must differ from the person who wiped the medium")
    details = {"method": method, "tool": record.tool, "verifier": record.verifier,
               "verification": record.verification}
    return _move(medium, "wipe", performed_by, now, details, last_wipe=record, checkout=None)


def mark_lost(medium: Medium, *, actor: str, now: datetime, note: str = "") -> Transition:
    return _move(medium, "mark_lost", actor, now, {"note": note} if note else {}, lost_at=now)


def found(medium: Medium, *, actor: str, now: datetime, note: str = "") -> Transition:
    return _move(medium, "found", actor, now, {"note": note} if note else {}, checkout=None)


def dispose(medium: Medium, *, method: SanitizationMethod, certificate_number: str,
            performed_by: str, now: datetime) -> Transition:
    if method not in SANITIZATION_METHODS:
        raise LedgerError(f"disposal method must be one of {', '.join(SANITIZATION_METHODS)}")
    if medium.state != "wiped" and method != "Destroy":
        raise LedgerError("a medium that was not wiped first can only be disposed of by Destroy")
    record = DisposalRecord(method, _text(certificate_number, "certificate number"),
                            _text(performed_by, "performer"), now)
    details = {"method": method, "certificate_number": record.certificate_number}
    return _move(medium, "dispose", performed_by, now, details, disposal=record)


def reconfigure(medium: Medium, *, hosts: Iterable[str], read_only: bool, actor: str,
                now: datetime) -> Transition:
    """Change where a medium may be used, or its read-only flag (audited, same state)."""
    if medium.state == "disposed":
        raise LedgerError(f"{medium.control_number} is disposed: it cannot be reconfigured")
    new_hosts = tuple(_text(h, "host") for h in hosts)
    new = replace(medium, hosts=new_hosts, read_only=read_only)
    audit = AuditRecord(medium.control_number, "reconfigure", medium.state, medium.state,
                        _text(actor, "actor"), _aware(now, "now"),
                        (("hosts", ",".join(new_hosts)), ("read_only", str(read_only).lower())))
    return Transition(new, audit)


def overdue(media: Iterable[Medium], now: datetime) -> list[OverdueMedium]:
    """Checked-out media past their due-back time, most overdue first."""
    _aware(now, "now")
    late = [
        OverdueMedium(m.control_number, m.checkout.holder, m.checkout.due_back,
                      now - m.checkout.due_back)
        for m in media
        if m.state == "checked_out" and m.checkout is not None and now > m.checkout.due_back
    ]
    return sorted(late, key=lambda o: o.overdue_by, reverse=True)


def to_policy(media: Iterable[Medium], *, class_rules: tuple[ClassRule, ...] = DEFAULT_CLASS_RULES,
              default: RuleAction = "block",
              usable_states: tuple[MediaState, ...] = DEFAULT_USABLE_STATES,
              block_when_overdue: bool = False) -> UsbPolicy:
    """The UsbPolicy the dashboard publishes for this ledger.

    Lost and disposed media stay in it, so that the agent reports ``state:lost`` or
    ``state:disposed`` (an anomaly) rather than a mere unregistered stick if one reappears.
    """
    published = []
    for m in media:
        until = m.checkout.due_back if block_when_overdue and m.checkout else None
        published.append(RegisteredMedium(
            control_number=m.control_number, identity=m.identity, token_digest=m.token_digest,
            state=m.state, hosts=m.hosts or (), read_only=m.read_only, usable_until=until))
    try:
        return UsbPolicy(media=tuple(published), class_rules=class_rules, default=default,
                         usable_states=usable_states)
    except ValidationError as exc:
        raise LedgerError(f"the ledger does not make a valid policy: {exc}") from exc

