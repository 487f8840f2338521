"""Names for ids: what every page shows instead of a person's, door's, reader's, host's, node's,
printer's or group's id, and the search that turns a typed name (or staff number) into ids.

``Names.load`` reads the small tables once per request (people, doors, printers, groups, the
admins' display names); a reader without a display name is named after its door and direction
(``server-room-in`` -> サーバールーム 入口).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from dashboard.models.auth import User
from dashboard.models.names import NAME_KINDS, DisplayName
from dashboard.models.people import Door, Group, Person, Printer
from dashboard.models.reports import Client

_SIDE = {"in": ("入口", "entry"), "out": ("出口", "exit"), "a": ("A", "A"), "b": ("B", "B")}
UNKNOWN_PERSON = ("未登録のカード", "unknown card")
SYSTEM_ACTORS = {"correlation": ("自動照合", "correlation"), "demo-setup": ("初期設定", "set-up"),
                 "cli": ("コマンド", "command line"), "system": ("システム", "system"),
                 "seed": ("初期設定", "set-up")}


@dataclass
class Names:
    lang: str = "ja"
    people: dict[str, str] = field(default_factory=dict)
    doors: dict[str, str] = field(default_factory=dict)
    printers: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    given: dict[tuple[str, str], str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # login -> display name
    clients: dict[str, str] = field(default_factory=dict)  # client id (as text) -> name

    @classmethod
    def load(cls, db: Session, lang: str = "ja") -> Names:
        return cls(
            lang=lang,
            people={i: nm for i, nm in db.execute(select(Person.id, Person.name))},
            doors={i: nm for i, nm in db.execute(select(Door.id, Door.name))},
            printers={i: nm for i, nm in db.execute(select(Printer.id, Printer.name))},
            groups={i: nm for i, nm in db.execute(select(Group.id, Group.name))},
            given={(k, i): n for k, i, n in db.execute(
                select(DisplayName.kind, DisplayName.ident, DisplayName.name))},
            users={u: d for u, d in db.execute(select(User.username, User.display_name)) if d},
            clients={str(i): nm for i, nm in db.execute(select(Client.id, Client.name))},
        )

    def _pick(self, pair: tuple[str, str]) -> str:
        return pair[0] if self.lang == "ja" else pair[1]

    def person(self, person_id: str | None) -> str:
        if not person_id:
            return self._pick(UNKNOWN_PERSON)
        return self.people.get(person_id, person_id)

    def user(self, username: str | None) -> str:
        """A dashboard user (or a system actor) by display name."""
        if not username:
            return ""
        if username in SYSTEM_ACTORS:
            return self._pick(SYSTEM_ACTORS[username])
        return self.users.get(username, username)

    def door(self, door_id: str | None) -> str:
        if not door_id:
            return ""
        return self.doors.get(door_id) or self.given.get(("door", door_id), door_id)

    def printer(self, printer_id: str | None) -> str:
        if not printer_id:
            return ""
        return self.printers.get(printer_id, printer_id)

    def group(self, group_id: str | None) -> str:
        return self.groups.get(group_id or "", group_id or "")

    def client(self, client_id: object) -> str:
        return self.clients.get(str(client_id), str(client_id)) if client_id is not None else ""

    def node(self, name: str | None) -> str:
        return self.given.get(("node", name or ""), name or "")

    def host(self, name: str | None) -> str:
        return self.given.get(("host", name or ""), name or "")

    def site(self, name: str) -> str:
        return self.given.get(("site", name), name)

    def reader(self, reader: str | None) -> str:
        if not reader:
            return ""
        given = self.given.get(("reader", reader))
        if given:
            return given
        door_id, _, side = reader.rpartition("-")
        if door_id in self.doors and side in _SIDE:
            return f"{self.doors[door_id]} {self._pick(_SIDE[side])}"
        return reader

    def place(self, place: str | None) -> str:
        """A door, else a host (review items name either)."""
        if not place:
            return ""
        if place in self.doors:
            return self.doors[place]
        return self.given.get(("host", place), place)

    def of(self, kind: str, ident: str) -> str:
        return {"reader": self.reader, "host": self.host, "node": self.node,
                "site": self.site}[kind](ident)


def find_people(db: Session, text: str, limit: int = 200) -> list[str]:
    """Ids of people whose name contains ``text`` (spaces ignored) or whose staff number or
    number-system operator id is ``text``."""
    text = text.strip()
    if not text:
        return []
    squeezed = text.replace(" ", "").replace("\u3000", "")
    name = func.replace(func.replace(Person.name, " ", ""), "\u3000", "")
    q = select(Person.id).where(or_(name.contains(squeezed, autoescape=True),
                                    func.lower(Person.id) == text.lower()))
    found = list(db.scalars(q.limit(limit)))
    if not found:
        for pid, ops in db.execute(select(Person.id, Person.operator_ids)):
            if text in (ops or []):
                found.append(pid)
    return found


def find_places(names: Names, text: str) -> list[str]:
    """Door ids and host names whose name or id contains ``text``."""
    text = text.strip().lower()
    if not text:
        return []
    out = [d for d, n in names.doors.items() if text in n.lower() or text == d.lower()]
    out += [i for (k, i), n in names.given.items()
            if k == "host" and (text in n.lower() or text == i.lower())]
    return out


def set_name(db: Session, actor: str, kind: str, ident: str, name: str, now: datetime) -> None:
    """Give ``ident`` (a reader, host, node or the site) a display name; audited."""
    from dashboard.audit import append_audit

    if kind not in NAME_KINDS:
        raise ValueError(f"cannot name a {kind!r}; choose one of {', '.join(NAME_KINDS)}")
    name, ident = name.strip(), ident.strip()
    if not ident or not name or len(name) > 128 or len(ident) > 128:
        raise ValueError("give an id and a name of 1 to 128 characters")
    row = db.get(DisplayName, (kind, ident))
    before = {"name": row.name} if row else None
    if row is None:
        row = DisplayName(kind=kind, ident=ident, name=name, updated_at=now, updated_by=actor)
        db.add(row)
    else:
        row.name, row.updated_at, row.updated_by = name, now, actor
    db.flush()
    append_audit(db, actor=actor, action="name.set", target_type="name",
                 target_id=f"{kind}:{ident}"[:128], before=before, after={"name": name},
                 now=now)
