"""Names, not ids, for what a document prints: people, operators, doors, printers, groups,
nodes, hosts and dashboard users.

``display`` takes a row's display name where the model has one (``display_name``, then
``name``), falling back to the id, so the lookup works whether or not a model carries a
display name yet. Everything is loaded once per document (a few hundred rows at most).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models.auth import User
from dashboard.models.nodes import Node
from dashboard.models.people import Door, Group, Person, Printer


def display(row: Any, ident: str) -> str:
    for attr in ("display_name", "name"):
        value = getattr(row, attr, None)
        if isinstance(value, str) and value.strip() and value != ident:
            return value
    return ident


def _table(session: Session, model: Any, key: str) -> dict[str, str]:
    return {str(getattr(r, key)): display(r, str(getattr(r, key)))
            for r in session.scalars(select(model))}


class Names:
    def __init__(self, session: Session) -> None:
        self.people = _table(session, Person, "id")
        self.doors = _table(session, Door, "id")
        self.printers = _table(session, Printer, "id")
        self.groups = _table(session, Group, "id")
        from dashboard.models.names import DisplayName  # names admins give (the console)

        self.given = {(k, i): n for k, i, n in session.execute(
            select(DisplayName.kind, DisplayName.ident, DisplayName.name))}
        self.nodes = {**_table(session, Node, "name"),
                      **{i: n for (k, i), n in self.given.items() if k == "node"}}
        self.users = {u.username: (u.display_name or "").strip() or u.username
                      for u in session.scalars(select(User))}
        self.hosts = self._hosts(session)

    def _hosts(self, session: Session) -> dict[str, str]:
        return {i: n for (k, i), n in self.given.items() if k == "host"}

    def person(self, pid: str | None, fallback: str = "") -> str:
        if not pid:
            return fallback
        return self.people.get(pid, fallback or pid)

    def door(self, door: str | None) -> str:
        return self.doors.get(door or "", door or "")

    def printer(self, printer: str | None) -> str:
        return self.printers.get(printer or "", printer or "")

    def group(self, gid: str) -> str:
        return self.groups.get(gid, gid)

    def node(self, name: str) -> str:
        return self.nodes.get(name, name)

    def node_name(self, name: str) -> str:
        """The node's display name, or "" while it has none (a body text never prints the
        id; the integrity annex does, through ``node``)."""
        shown = self.nodes.get(name, name)
        return "" if shown == name else shown

    def host(self, name: str) -> str:
        return self.hosts.get(name, name)

    def host_name(self, name: str) -> str:
        """The host's display name, or "" while it has none (see ``node_name``)."""
        shown = self.hosts.get(name, name)
        return "" if shown == name else shown

    def user(self, username: str | None) -> str:
        """A dashboard user, or a person when the actor is one (a custodian, a holder)."""
        if not username:
            return ""
        if username in self.people:
            return self.people[username]
        return self.users.get(username, username)
