"""Groups (rights): doors, printers, weekly windows (schedules), public holidays, members."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any

from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models.nodes import Node
from dashboard.models.people import Door, Group, Person, Printer, TimeWindow
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


class WindowIn(Input):
    """Days 0=Mon..6=Sun; start inclusive, end exclusive (00:00 = end of day), site local time."""

    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(min_length=1)
    start: time
    end: time

    @model_validator(mode="after")
    def _check(self) -> WindowIn:
        if self.start.tzinfo or self.end.tzinfo:
            raise ValueError("window times are local site times without a zone")
        if self.end != time(0) and self.end <= self.start:
            raise ValueError("window end must be after its start (00:00 means end of day)")
        if len(set(self.days)) != len(self.days):
            raise ValueError("window lists a day twice")
        return self


class GroupPatch(Input):
    name: Name | None = None
    on_holidays: bool | None = None
    doors: list[Ident] | None = None
    printers: list[Ident] | None = None
    hosts: list[Ident] | None = None  # room PCs (host agents' names): card log-on there
    host_admin: bool | None = None
    windows: list[WindowIn] | None = None
    members: list[Ident] | None = None


class GroupIn(GroupPatch):
    id: Ident
    name: Name
    site: Site | None = None  # the site whose doors and printers it opens


def group_dict(g: Group) -> dict[str, Any]:
    return {
        "id": g.id,
        "name": g.name,
        "site": g.site,
        "on_holidays": g.on_holidays,
        "doors": [d.id for d in g.doors],
        "printers": [p.id for p in g.printers],
        "hosts": list(g.hosts or []),
        "host_admin": bool(g.host_admin),
        "windows": [{"days": list(w.days), "start": w.start, "end": w.end} for w in g.windows],
        "members": sorted(p.id for p in g.members),
    }


def get_group(session: Session, group_id: str, within: str | None = None) -> Group:
    """The group; NotFound also when ``within`` (a site's editor) is not its site."""
    group = session.get(Group, group_id)
    if group is None or not visible(group.site, within):
        raise NotFound(f"no group {group_id!r}")
    return group


def _fetch(session: Session, model: Any, ids: list[str], what: str,
           site: str | None) -> list[Any]:
    """The rows named, all of ``site`` (None: any): another site's is unknown here."""
    found = {o.id: o for o in session.scalars(select(model).where(model.id.in_(ids)))
             if visible(o.site, site)}
    missing = sorted(set(ids) - set(found))
    if missing:
        raise NotFound(f"unknown {what}: {', '.join(missing)}")
    return [found[i] for i in sorted(set(ids))]


def _site_hosts(session: Session, hosts: list[str], group: Group) -> list[str]:
    """A group's PCs are its site's: a host another site's group names, or another site's
    node (a host agent named as its PC), is unknown here."""
    others = {h for listed in session.scalars(
        select(Group.hosts).where(Group.site != group.site, Group.id != group.id))
        for h in listed or ()}
    others |= set(session.scalars(select(Node.name).where(Node.site != group.site,
                                                          Node.name.in_(hosts))))
    taken = sorted(set(hosts) & others)
    if taken:
        raise NotFound(f"unknown host(s): {', '.join(taken)}")
    return hosts


def _apply(session: Session, group: Group, patch: GroupPatch,
           within: str | None = None) -> None:
    """A group's doors and printers are its own site's, whoever edits it; its members may be
    of any site (people allowed here from elsewhere), but a site's editor names only its own
    site's people and keeps the members of other sites, whom it does not see."""
    if patch.name is not None:
        group.name = patch.name
    if "on_holidays" in patch.model_fields_set:
        if patch.on_holidays is None:
            raise ServiceError("on_holidays must be true or false")
        group.on_holidays = patch.on_holidays
    if patch.doors is not None:
        group.doors = _fetch(session, Door, patch.doors, "door(s)", group.site)
    if patch.printers is not None:
        group.printers = _fetch(session, Printer, patch.printers, "printer(s)", group.site)
    if patch.hosts is not None:
        group.hosts = _site_hosts(session, sorted(set(patch.hosts)), group)
    if "host_admin" in patch.model_fields_set:
        if patch.host_admin is None:
            raise ServiceError("host_admin must be true or false")
        group.host_admin = patch.host_admin
    if patch.members is not None:
        kept = [p for p in group.members if not visible(p.site, within)]
        named = _fetch(session, Person, patch.members, "person(s)", within)
        group.members = sorted([*kept, *named], key=lambda p: p.id)
    if patch.windows is not None:
        group.windows = [
            TimeWindow(days=sorted(w.days), start=w.start, end=w.end) for w in patch.windows
        ]


def create_group(
    session: Session, actor: str, data: GroupIn | dict[str, Any], *, now: datetime | None = None,
    within: str | None = None,
) -> Group:
    check_actor(actor)
    inp = validate(GroupIn, data)
    at = when(now)
    if session.get(Group, inp.id) is not None:
        raise Conflict(f"group {inp.id!r} already exists")
    site = new_site(session, inp.site, within)
    group = Group(id=inp.id, name=inp.name, on_holidays=False, hosts=[], host_admin=False,
                  site=site)
    session.add(group)
    session.flush()  # the site (its default) before its doors are checked against it
    _apply(session, group, inp, within)
    session.flush()
    rights_changed(session, actor, "group.create", "group", group.id, None, group_dict(group), at)
    return group


def update_group(
    session: Session,
    actor: str,
    group_id: str,
    data: GroupPatch | dict[str, Any],
    *,
    now: datetime | None = None,
    within: str | None = None,
) -> Group:
    check_actor(actor)
    patch = validate(GroupPatch, data)
    at = when(now)
    group = get_group(session, group_id, within)
    before = group_dict(group)
    _apply(session, group, patch, within)
    session.flush()
    after = group_dict(group)
    if after != before:
        rights_changed(session, actor, "group.update", "group", group.id, before, after, at)
    return group


def set_membership(
    session: Session,
    actor: str,
    group_id: str,
    person_id: str,
    member: bool,
    *,
    now: datetime | None = None,
    within: str | None = None,
) -> Group:
    """Add (``member=True``) or remove one person, leaving the other members as they are."""
    group = get_group(session, group_id, within)
    members = {p.id for p in group.members if visible(p.site, within)}
    members = members | {person_id} if member else members - {person_id}
    return update_group(session, actor, group_id, {"members": sorted(members)}, now=now,
                        within=within)


def delete_group(
    session: Session, actor: str, group_id: str, *, now: datetime | None = None,
    within: str | None = None,
) -> None:
    check_actor(actor)
    at = when(now)
    group = get_group(session, group_id, within)
    before = group_dict(group)
    session.delete(group)
    session.flush()
    rights_changed(session, actor, "group.delete", "group", group_id, before, None, at)
