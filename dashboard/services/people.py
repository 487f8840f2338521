"""People: create, update (incl. deactivate and group membership), delete."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models.people import Group, Person
from dashboard.services.base import (
    Conflict,
    Ident,
    Input,
    Name,
    NotFound,
    ServiceError,
    check_actor,
    rights_changed,
    validate,
    when,
)

ShortText = Annotated[str, Field(min_length=1, max_length=128)]
Account = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_][a-z0-9_.-]*\$?$")]
_LISTS = ("operator_ids", "cups_users", "host_accounts")


class PersonPatch(Input):
    name: Name | None = None
    active: bool | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    operator_ids: list[ShortText] | None = None
    cups_users: list[ShortText] | None = None
    host_accounts: list[Account] | None = None
    groups: list[Ident] | None = None


class PersonIn(PersonPatch):
    id: Ident
    name: Name

    @model_validator(mode="after")
    def _dates(self) -> PersonIn:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self


def person_dict(p: Person) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "active": p.active,
        "valid_from": p.valid_from,
        "valid_until": p.valid_until,
        "operator_ids": list(p.operator_ids or []),
        "cups_users": list(p.cups_users or []),
        "host_accounts": list(p.host_accounts or []),
        "groups": sorted(g.id for g in p.groups),
        "cards": [{"uid": c.uid, "active": c.active} for c in p.cards],
    }


def get_person(session: Session, person_id: str) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person {person_id!r}")
    return person


def _groups(session: Session, ids: list[str]) -> list[Group]:
    found = {g.id: g for g in session.scalars(select(Group).where(Group.id.in_(ids)))}
    missing = sorted(set(ids) - set(found))
    if missing:
        raise NotFound(f"unknown group(s): {', '.join(missing)}")
    return [found[i] for i in sorted(set(ids))]


def _apply(session: Session, person: Person, patch: PersonPatch) -> None:
    for name in ("name", "active", "valid_from", "valid_until", *_LISTS):
        if name in patch.model_fields_set:
            value = getattr(patch, name)
            if value is None and name in ("name", "active", *_LISTS):
                raise ServiceError(f"{name} cannot be empty")
            setattr(person, name, value)
    if patch.groups is not None:
        person.groups = _groups(session, patch.groups)
    if person.valid_from and person.valid_until and person.valid_until < person.valid_from:
        raise ServiceError("valid_until is before valid_from")


def create_person(
    session: Session, actor: str, data: PersonIn | dict[str, Any], *, now: datetime | None = None
) -> Person:
    check_actor(actor)
    inp = validate(PersonIn, data)
    at = when(now)
    if session.get(Person, inp.id) is not None:
        raise Conflict(f"person {inp.id!r} already exists")
    person = Person(
        id=inp.id, name=inp.name, active=True, operator_ids=[], cups_users=[], host_accounts=[],
        created_at=at
    )
    session.add(person)
    _apply(session, person, inp)
    session.flush()
    rights_changed(
        session, actor, "person.create", "person", person.id, None, person_dict(person), at
    )
    return person


def update_person(
    session: Session,
    actor: str,
    person_id: str,
    data: PersonPatch | dict[str, Any],
    *,
    now: datetime | None = None,
) -> Person:
    check_actor(actor)
    patch = validate(PersonPatch, data)
    at = when(now)
    person = get_person(session, person_id)
    before = person_dict(person)
    _apply(session, person, patch)
    session.flush()
    after = person_dict(person)
    if after != before:
        rights_changed(session, actor, "person.update", "person", person.id, before, after, at)
    return person


def deactivate_person(
    session: Session, actor: str, person_id: str, *, now: datetime | None = None
) -> Person:
    return update_person(session, actor, person_id, {"active": False}, now=now)


def delete_person(
    session: Session, actor: str, person_id: str, *, now: datetime | None = None
) -> None:
    check_actor(actor)
    at = when(now)
    person = get_person(session, person_id)
    before = person_dict(person)
    session.delete(person)
    session.flush()
    rights_changed(session, actor, "person.delete", "person", person_id, before, None, at)
