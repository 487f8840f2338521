"""Audited ledger changes: each wraps one pure transition of ``usb_guard.ledger``.

A service takes ``(session, actor, ...)`` plus keyword ``now``: it loads the medium, runs the
pure transition (which refuses what the lifecycle does not allow), writes the new state, a
lifecycle record and a hash-chained audit record, and marks the node policy dirty so the agents
get the change. The caller commits (``dashboard.web.deps.change`` does, turning errors into 4xx).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.media.convert import apply_to_row, medium_dict, to_ledger
from dashboard.models.media import MediaCounter, Medium, MediumRecord
from dashboard.models.people import Person
from dashboard.services.base import (
    Conflict,
    Input,
    NotFound,
    ServiceError,
    audit,
    check_actor,
    mark_policy_dirty,
    validate,
    when,
)
from dashboard.textguard import UNGUARDED
from usb_guard import ledger
from usb_guard.certificate import Destination
from usb_guard.errors import LedgerError
from usb_guard.policy import MediumIdentity

Text = Annotated[str, Field(min_length=1, max_length=200)]
Method = Literal["Clear", "Purge", "Destroy"]


class MediaError(ServiceError):
    """A ledger operation was refused (wrong state, same person twice, bad details)."""


class RegisterIn(Input):
    vendor_id: str = Field(pattern=r"^[0-9a-fA-F]{4}$")
    product_id: str = Field(pattern=r"^[0-9a-fA-F]{4}$")
    # the stick's identity, matched as is by the agents: kept exactly (see SECURITY.md)
    serial: Annotated[str | None, UNGUARDED] = Field(default=None, max_length=255)
    descriptors_sha256: Annotated[str | None, UNGUARDED] = Field(
        default=None, pattern=r"^[0-9a-f]{64}$")
    interfaces: list[str] = []
    token_digest: Annotated[str, UNGUARDED] = Field(pattern=r"^[0-9a-f]{64}$")
    make: Text
    model: Text
    media_type: Text = "USBメモリ"
    capacity: str = Field(default="", max_length=50)
    custodian: Text
    hosts: list[Annotated[str, Field(min_length=1, max_length=128)]] = []
    read_only: bool = False
    store: bool = True

    @field_validator("serial", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return None if value == "" else value


class CheckOutIn(Input):
    holder: Text
    purpose: Text
    due_back: datetime
    approved_by: Annotated[str, Field(min_length=1, max_length=64)]


class WipeIn(Input):
    method: Method
    technique: Text
    tool: Text
    verifier: Text
    verification: Text


class DisposeIn(Input):
    method: Method
    certificate_number: Annotated[str, Field(min_length=1, max_length=64)]
    destination: Destination = "destroyed"
    verifier: Text


class NoteIn(Input):
    note: str = Field(default="", max_length=200)


class ReconfigureIn(Input):
    hosts: list[Annotated[str, Field(min_length=1, max_length=128)]] = []
    read_only: bool = False


def get_medium(session: Session, control_number: str) -> Medium:
    row = session.get(Medium, control_number)
    if row is None:
        raise NotFound(f"no medium {control_number!r}")
    return row


def _person(session: Session, person_id: str, what: str) -> str:
    if session.get(Person, person_id) is None:
        raise NotFound(f"{what} {person_id!r} is not a registered person")
    return person_id


def _commit(session: Session, row: Medium, before: dict[str, Any] | None,
            step: ledger.Transition, now: datetime, **record: Any) -> Medium:
    apply_to_row(row, step.medium, now)
    session.flush()
    a = step.audit
    session.add(MediumRecord(
        control_number=a.control_number, action=a.action, from_state=a.from_state,
        to_state=a.to_state, actor=a.actor, at=a.at, details=dict(a.details), **record))
    audit(session, a.actor, f"medium.{a.action}", "medium", a.control_number, before,
          medium_dict(row), now)
    mark_policy_dirty(session, now)
    session.flush()
    return row


def _step(fn: Any, *args: Any, **kwargs: Any) -> ledger.Transition:
    try:
        step: ledger.Transition = fn(*args, **kwargs)
    except LedgerError as exc:
        raise MediaError(str(exc)) from exc
    return step


def next_control_number(session: Session, numbering: ledger.ControlNumbering) -> str:
    """Allocate the next number (row-locked on PostgreSQL; SQLite serialises writers)."""
    counter = session.scalars(
        select(MediaCounter).where(MediaCounter.prefix == numbering.prefix).with_for_update()
    ).first()
    if counter is None:
        counter = MediaCounter(prefix=numbering.prefix, highest_issued=0)
        session.add(counter)
    number, highest = numbering.allocate(counter.highest_issued)
    while session.get(Medium, number) is not None:  # numbers entered before the counter existed
        number, highest = numbering.allocate(highest)
    counter.highest_issued = highest
    session.flush()
    return number


def register_medium(session: Session, actor: str, data: RegisterIn | dict[str, Any], *,
                    numbering: ledger.ControlNumbering | None = None,
                    now: datetime | None = None) -> Medium:
    check_actor(actor)
    at = when(now)
    d = validate(RegisterIn, data)
    _person(session, d.custodian, "custodian")
    clash = session.scalar(select(Medium.control_number)
                           .where(Medium.token_digest == d.token_digest))
    if clash is not None:
        raise Conflict(f"this medium token is already registered as {clash}")
    try:
        identity = MediumIdentity(vendor_id=d.vendor_id, product_id=d.product_id,
                                  serial=d.serial, descriptors_sha256=d.descriptors_sha256,
                                  interfaces=tuple(d.interfaces))
    except ValueError as exc:
        raise MediaError(f"invalid identity: {exc}") from exc
    number = next_control_number(session, numbering or ledger.ControlNumbering())
    step = _step(ledger.register, number, identity, d.token_digest, make=d.make, model=d.model,
                 custodian=d.custodian, actor=actor, now=at, hosts=d.hosts,
                 read_only=d.read_only, media_type=d.media_type)
    row = Medium(control_number=number, registered_by=actor, capacity=d.capacity,
                 registered_at=at, updated_at=at)
    session.add(row)
    _commit(session, row, None, step, at)
    if d.store:
        store_medium(session, actor, number, now=at)
    return row


def store_medium(session: Session, actor: str, control_number: str, *,
                 now: datetime | None = None) -> Medium:
    check_actor(actor)
    at = when(now)
    row = get_medium(session, control_number)
    before = medium_dict(row)
    return _commit(session, row, before, _step(ledger.store, to_ledger(row), actor=actor, now=at),
                   at)


def check_out(session: Session, actor: str, control_number: str,
              data: CheckOutIn | dict[str, Any], *, now: datetime | None = None) -> Medium:
    """Check a medium out to ``holder``; ``actor`` requests, ``approved_by`` (a second person,
    whose identity the caller has verified) approves."""
    check_actor(actor)
    at = when(now)
    d = validate(CheckOutIn, data)
    if d.due_back.tzinfo is None:
        raise MediaError("due back must carry a time zone")
    _person(session, d.holder, "holder")
    row = get_medium(session, control_number)
    before = medium_dict(row)
    step = _step(ledger.check_out, to_ledger(row), holder=d.holder, purpose=d.purpose,
                 due_back=d.due_back, requested_by=actor, approved_by=d.approved_by, now=at)
    return _commit(session, row, before, step, at, holder=d.holder, purpose=d.purpose,
                   due_back=d.due_back, approved_by=d.approved_by)


def return_medium(session: Session, actor: str, control_number: str,
                  data: NoteIn | dict[str, Any] | None = None, *,
                  now: datetime | None = None) -> Medium:
    check_actor(actor)
    at = when(now)
    d = validate(NoteIn, data or {})
    row = get_medium(session, control_number)
    before = medium_dict(row)
    holder = row.holder
    step = _step(ledger.return_medium, to_ledger(row), actor=actor, now=at, note=d.note)
    return _commit(session, row, before, step, at, holder=holder)


def wipe_medium(session: Session, actor: str, control_number: str,
                data: WipeIn | dict[str, Any], *, now: datetime | None = None) -> Medium:
    check_actor(actor)
    at = when(now)
    d = validate(WipeIn, data)
    row = get_medium(session, control_number)
    before = medium_dict(row)
    step = _step(ledger.wipe, to_ledger(row), method=d.method, tool=d.tool, performed_by=actor,
                 verifier=d.verifier, verification=d.verification, now=at)
    row.wipe_technique = d.technique
    return _commit(session, row, before, step, at, method=d.method, verifier=d.verifier)


def mark_lost(session: Session, actor: str, control_number: str,
              data: NoteIn | dict[str, Any] | None = None, *,
              now: datetime | None = None) -> Medium:
    check_actor(actor)
    at = when(now)
    d = validate(NoteIn, data or {})
    row = get_medium(session, control_number)
    before = medium_dict(row)
    step = _step(ledger.mark_lost, to_ledger(row), actor=actor, now=at, note=d.note)
    return _commit(session, row, before, step, at, holder=row.holder)


def mark_found(session: Session, actor: str, control_number: str,
               data: NoteIn | dict[str, Any] | None = None, *,
               now: datetime | None = None) -> Medium:
    check_actor(actor)
    at = when(now)
    d = validate(NoteIn, data or {})
    row = get_medium(session, control_number)
    before = medium_dict(row)
    step = _step(ledger.found, to_ledger(row), actor=actor, now=at, note=d.note)
    return _commit(session, row, before, step, at)


def dispose_medium(session: Session, actor: str, control_number: str,
                   data: DisposeIn | dict[str, Any], *, now: datetime | None = None) -> Medium:
    check_actor(actor)
    at = when(now)
    d = validate(DisposeIn, data)
    if d.verifier == actor:
        raise MediaError("the verifier must differ from the person who disposes of the medium")
    if d.method == "Destroy" and d.destination in ("internal_reuse", "external_reuse"):
        raise MediaError("a destroyed medium cannot be reused")
    clash = session.scalar(select(Medium.control_number).where(
        Medium.disposal_certificate == d.certificate_number))
    if clash is not None:
        raise Conflict(f"certificate number {d.certificate_number} is already used by {clash}")
    row = get_medium(session, control_number)
    before = medium_dict(row)
    step = _step(ledger.dispose, to_ledger(row), method=d.method,
                 certificate_number=d.certificate_number, performed_by=actor, now=at)
    row.disposal_destination, row.disposal_verifier = d.destination, d.verifier
    return _commit(session, row, before, step, at, method=d.method, verifier=d.verifier,
                   certificate_number=d.certificate_number)


def reconfigure_medium(session: Session, actor: str, control_number: str,
                       data: ReconfigureIn | dict[str, Any], *,
                       now: datetime | None = None) -> Medium:
    check_actor(actor)
    at = when(now)
    d = validate(ReconfigureIn, data)
    row = get_medium(session, control_number)
    before = medium_dict(row)
    step = _step(ledger.reconfigure, to_ledger(row), hosts=d.hosts, read_only=d.read_only,
                 actor=actor, now=at)
    return _commit(session, row, before, step, at)
