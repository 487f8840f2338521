"""Doors (two-person rule, anti-passback) and printers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy.orm import Session

from dashboard.models.people import Door, Printer
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


class DoorPatch(Input):
    name: Name | None = None
    two_person: bool | None = None
    two_person_window_s: int | None = Field(default=None, ge=1, le=600)
    anti_passback: bool | None = None
    require_verified: bool | None = None  # only cards that prove their key (server room, rack)


class DoorIn(DoorPatch):
    id: Ident
    name: Name
    site: Site | None = None  # the site whose room it is in


class PrinterIn(Input):
    id: Ident
    name: Name
    site: Site | None = None


def door_dict(d: Door) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "site": d.site,
        "two_person": d.two_person,
        "two_person_window_s": d.two_person_window_s,
        "anti_passback": d.anti_passback,
        "require_verified": bool(d.require_verified),
    }


def printer_dict(p: Printer) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "site": p.site}


def _apply(door: Door, patch: DoorPatch) -> None:
    for name in ("name", "two_person", "two_person_window_s", "anti_passback",
                 "require_verified"):
        if name in patch.model_fields_set:
            value = getattr(patch, name)
            if value is None:
                raise ServiceError(f"{name} cannot be empty")
            setattr(door, name, value)


def create_door(
    session: Session, actor: str, data: DoorIn | dict[str, Any], *, now: datetime | None = None,
    within: str | None = None,
) -> Door:
    check_actor(actor)
    inp = validate(DoorIn, data)
    at = when(now)
    if session.get(Door, inp.id) is not None:
        raise Conflict(f"door {inp.id!r} already exists")
    site = new_site(session, inp.site, within)
    door = Door(
        id=inp.id, name=inp.name, two_person=False, two_person_window_s=10, anti_passback=False,
        require_verified=False, site=site,
    )
    _apply(door, inp)
    session.add(door)
    session.flush()
    rights_changed(session, actor, "door.create", "door", door.id, None, door_dict(door), at)
    return door


def update_door(
    session: Session,
    actor: str,
    door_id: str,
    data: DoorPatch | dict[str, Any],
    *,
    now: datetime | None = None,
    within: str | None = None,
) -> Door:
    check_actor(actor)
    patch = validate(DoorPatch, data)
    at = when(now)
    door = session.get(Door, door_id)
    if door is None or not visible(door.site, within):
        raise NotFound(f"no door {door_id!r}")
    before = door_dict(door)
    _apply(door, patch)
    session.flush()
    if door_dict(door) != before:
        rights_changed(session, actor, "door.update", "door", door.id, before, door_dict(door), at)
    return door


def delete_door(session: Session, actor: str, door_id: str, *, now: datetime | None = None,
                within: str | None = None) -> None:
    check_actor(actor)
    at = when(now)
    door = session.get(Door, door_id)
    if door is None or not visible(door.site, within):
        raise NotFound(f"no door {door_id!r}")
    before = door_dict(door)
    session.delete(door)
    session.flush()
    rights_changed(session, actor, "door.delete", "door", door_id, before, None, at)


def create_printer(
    session: Session, actor: str, data: PrinterIn | dict[str, Any], *, now: datetime | None = None,
    within: str | None = None,
) -> Printer:
    check_actor(actor)
    inp = validate(PrinterIn, data)
    at = when(now)
    if session.get(Printer, inp.id) is not None:
        raise Conflict(f"printer {inp.id!r} already exists")
    site = new_site(session, inp.site, within)
    printer = Printer(id=inp.id, name=inp.name, site=site)
    session.add(printer)
    session.flush()
    rights_changed(
        session, actor, "printer.create", "printer", printer.id, None, printer_dict(printer), at
    )
    return printer


def delete_printer(
    session: Session, actor: str, printer_id: str, *, now: datetime | None = None,
    within: str | None = None,
) -> None:
    check_actor(actor)
    at = when(now)
    printer = session.get(Printer, printer_id)
    if printer is None or not visible(printer.site, within):
        raise NotFound(f"no printer {printer_id!r}")
    before = printer_dict(printer)
    session.delete(printer)
    session.flush()
    rights_changed(session, actor, "printer.delete", "printer", printer_id, before, None, at)
