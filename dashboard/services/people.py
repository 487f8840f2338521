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
    Site,
    check_actor,
    new_site,
    rights_changed,
    validate,
    visible,
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
    site: Site | None = None  # the home site (headquarters may move a person)


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
        "site": p.site,
        "groups": sorted(g.id for g in p.groups),
        "cards": [{"uid": c.uid, "active": c.active} for c in p.cards],
    }


def get_person(session: Session, person_id: str, within: str | None = None) -> Person:
    """The person; NotFound also when ``within`` (a site's editor) is not their home site."""
    person = session.get(Person, person_id)
    if person is None or not visible(person.site, within):
        raise NotFound(f"no person {person_id!r}")
    return person


def _groups(session: Session, ids: list[str], within: str | None) -> list[Group]:
    found = {g.id: g for g in session.scalars(select(Group).where(Group.id.in_(ids)))
             if visible(g.site, within)}
    missing = sorted(set(ids) - set(found))
    if missing:
        raise NotFound(f"unknown group(s): {', '.join(missing)}")
    return [found[i] for i in sorted(set(ids))]


def _apply(session: Session, person: Person, patch: PersonPatch,
           within: str | None = None) -> None:
    for name in ("name", "active", "valid_from", "valid_until", *_LISTS):
        if name in patch.model_fields_set:
            value = getattr(patch, name)
            if value is None and name in ("name", "active", *_LISTS):
                raise ServiceError(f"{name} cannot be empty")
            setattr(person, name, value)
    if patch.site is not None and patch.site != person.site:
        if within is not None:  # a site's editor does not send its people elsewhere
            raise ServiceError(f"you manage site {within} only")
        person.site = patch.site
    if patch.groups is not None:
        # a site's editor sets its site's groups; the person's rights at other sites stay
        kept = [g for g in person.groups if not visible(g.site, within)]
        person.groups = sorted([*kept, *_groups(session, patch.groups, within)],
                               key=lambda g: g.id)
    if person.valid_from and person.valid_until and person.valid_until < person.valid_from:
        raise ServiceError("valid_until is before valid_from")


def create_person(
    session: Session, actor: str, data: PersonIn | dict[str, Any], *, now: datetime | None = None,
    within: str | None = None,
) -> Person:
    """A new person of site ``within`` (a site's editor), or of the site named (headquarters),
    else of the installation's one site."""
    check_actor(actor)
    inp = validate(PersonIn, data)
    at = when(now)
    if session.get(Person, inp.id) is not None:
        raise Conflict(f"person {inp.id!r} already exists")
    site = new_site(session, inp.site, within)
    person = Person(
        id=inp.id, name=inp.name, active=True, operator_ids=[], cups_users=[], host_accounts=[],
        created_at=at, site=site,
    )
    session.add(person)
    _apply(session, person, inp, within)
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
    within: str | None = None,
) -> Person:
    check_actor(actor)
    patch = validate(PersonPatch, data)
    at = when(now)
    person = get_person(session, person_id, within)
    before = person_dict(person)
    _apply(session, person, patch, within)
    session.flush()
    after = person_dict(person)
    if after != before:
        rights_changed(session, actor, "person.update", "person", person.id, before, after, at)
    return person


def deactivate_person(
    session: Session, actor: str, person_id: str, *, now: datetime | None = None,
    within: str | None = None,
) -> Person:
    return update_person(session, actor, person_id, {"active": False}, now=now, within=within)


def delete_person(
    session: Session, actor: str, person_id: str, *, now: datetime | None = None,
    within: str | None = None,
) -> None:
    check_actor(actor)
    at = when(now)
    person = get_person(session, person_id, within)
    before = person_dict(person)
    session.delete(person)
    session.flush()
    rights_changed(session, actor, "person.delete", "person", person_id, before, None, at)
