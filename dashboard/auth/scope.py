"""Site- and client-scoped accounts (many sites, issue 24), enforced where the rows are read.

An account with ``site`` (a site's security admin or auditor) sees and manages that site's
records only: its nodes, their events (door log, room PCs) and the anomalies they raised, and
the rows that carry the site (people by their home site, with their cards; groups, doors,
printers). An
account with ``client_id`` (a client company's auditor) reads that client's number-access
records and the reports issued to it, nothing else. An account with neither is headquarters':
every site, every client.

Secure by default: a scoped account may call only the routes listed here, each of which filters
its queries with the helpers below (``SITE_ROUTES`` / ``CLIENT_ROUTES``); the security middleware
refuses every other route to it, so a page added later without a scope filter is closed to
scoped accounts until someone scopes it. A record outside the scope is "not found" (404), the
same answer as a record that does not exist: a URL does not even tell whether it exists.
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import HTTPException
from sqlalchemy import ColumnElement, Select, false, select
from sqlalchemy.orm import Session as DbSession

from dashboard.auth.service import Principal
from dashboard.models.media import Medium
from dashboard.models.nodes import Node
from dashboard.models.people import Person
from dashboard.models.reports import ClientOffice

T = TypeVar("T", bound=tuple)  # type: ignore[type-arg]

# Every scoped account: its own account and session.
OWN = frozenset({"logout", "me", "account.password", "account.password_change"})
# A site's accounts: the site's nodes, door log and anomalies (what the role matrix allows).
SITE_ROUTES = OWN | frozenset({
    "nodes.page", "api.nodes.list", "api.nodes.keys",
    "nodes.approve", "nodes.reject", "api.nodes.approve", "nodes.roles", "nodes.revoke",
    "nodes.key_approve", "nodes.key_revoke", "api.nodes.roles", "api.nodes.revoke",
    "api.nodes.key_approve", "api.nodes.key_revoke",
    "door_log.page", "door_log.csv", "api.events",
    "anomalies.ack", "api.anomalies.list", "api.anomalies.ack",
    "review.page", "review.item", "review.acknowledge", "review.resolve", "review.assign",
    "review.escalate", "review.bulk_acknowledge", "api.review.list", "api.review.get",
    "api.review.act",
    # people (home site), their cards, groups (rights), doors, printers: rows with a site
    "people.page", "people.detail", "people.create", "people.update", "people.card_add",
    "people.card_revoke", "api.people.list", "api.people.get", "api.people.create",
    "api.people.update", "api.cards.create", "api.cards.revoke",
    "groups.page", "groups.create", "groups.update", "groups.window_add",
    "groups.window_delete", "api.groups.list",
    "doors.page", "doors.create", "doors.update", "api.doors.list",
    "printers.page", "printers.create", "printers.delete", "api.printers.list",
    # the card master keys: its own people's cards on each key (read only: the keys are every
    # site's, so rotating or retiring one is headquarters')
    "card_keys.page",
    # room PCs: hosts its nodes reported or its groups name
    "hosts.page", "hosts.detail",
    # the media ledger: a medium is its custodian's site's (media.require_medium)
    "media.page", "media.csv", "media.detail", "media.certificate_pdf",
    "media.certificate_csv", "media.register", "media.check_out", "media.return",
    "media.store", "media.wipe", "media.lost", "media.found", "media.dispose",
    "media.reconfigure", "media.wipe_interval",
    "api.media.list", "api.media.get", "api.media.register", "api.media.check_out",
    "api.media.return", "api.media.store", "api.media.wipe", "api.media.lost",
    "api.media.found", "api.media.dispose",
})
# A client's auditor: its number-access records and its reports.
CLIENT_ROUTES = OWN | frozenset({"numlog.page", "reports.page", "reports.download"})


def may_call(who: Principal, route: str) -> bool:
    """Whether the account's scope lets it call ``route`` at all (the role is checked apart)."""
    if who.client_id is not None:
        return route in CLIENT_ROUTES
    if who.site is not None:
        return route in SITE_ROUTES
    return True


def _site_nodes(site: str) -> Select[tuple[str]]:
    return select(Node.name).where(Node.site == site)


def node_filter(who: Principal, column: ColumnElement[str | None]) -> ColumnElement[bool] | None:
    """A WHERE clause keeping rows whose ``column`` names a node of the account's site (None:
    no restriction). A client's auditor sees no node's records."""
    if who.client_id is not None:
        return false()
    if who.site is None:
        return None
    return column.in_(_site_nodes(who.site))


def only_site(stmt: Select[T], who: Principal, column: ColumnElement[str | None]) -> Select[T]:
    clause = node_filter(who, column)
    return stmt if clause is None else stmt.where(clause)


def require_node(db: DbSession, who: Principal, name: str) -> None:
    """404 unless node ``name`` is in the account's scope (an unknown node is left to the
    caller's own "no such node" answer)."""
    if who.client_id is not None:
        raise HTTPException(status_code=404, detail=f"no node {name!r}")
    if who.site is None:
        return
    site = db.scalar(select(Node.site).where(Node.name == name))
    if site is not None and site != who.site:
        raise HTTPException(status_code=404, detail=f"no node {name!r}")


def require_site_row(db: DbSession, who: Principal, id_column: ColumnElement[int],
                     row_id: int, node_column: ColumnElement[str | None], what: str) -> None:
    """404 unless row ``row_id`` was raised by a node of the account's site (a row of no node
    is headquarters')."""
    clause = node_filter(who, node_column)
    if clause is not None and db.scalar(
            select(id_column).where(id_column == row_id, clause)) is None:
        raise HTTPException(status_code=404, detail=f"no {what} {row_id}")


def client_filter(who: Principal, column: ColumnElement[int | None]
                  ) -> ColumnElement[bool] | None:
    """A WHERE clause keeping rows of the account's client (None: no restriction); a site's
    account reads no client's documents."""
    if who.site is not None:
        return false()
    if who.client_id is None:
        return None
    return column == who.client_id


def client_offices(who: Principal) -> Select[tuple[str]] | None:
    """The 事業所名 of the account's client (None: every office)."""
    if who.client_id is None:
        return None
    return select(ClientOffice.office).where(ClientOffice.client_id == who.client_id)


def site_filter(who: Principal, column: ColumnElement[str]) -> ColumnElement[bool] | None:
    """A WHERE clause keeping rows whose own ``column`` is the account's site (None: no
    restriction); a client's auditor sees no site's rows."""
    if who.client_id is not None:
        return false()
    if who.site is None:
        return None
    return column == who.site


def in_site(stmt: Select[T], who: Principal, column: ColumnElement[str]) -> Select[T]:
    clause = site_filter(who, column)
    return stmt if clause is None else stmt.where(clause)


def sees_site(who: Principal, site: str | None) -> bool:
    """Whether a row of ``site`` is in the account's scope."""
    if who.client_id is not None:
        return False
    return who.site is None or site == who.site


def site_nodes(db: DbSession, who: Principal) -> set[str] | None:
    """The names of the account's site's nodes (None: every node)."""
    if who.client_id is not None:
        return set()
    if who.site is None:
        return None
    return set(db.scalars(_site_nodes(who.site)))


def site_people(who: Principal) -> Select[tuple[str]] | None:
    """The ids of the account's site's people (None: everyone)."""
    if who.client_id is not None:
        return select(Person.id).where(false())
    if who.site is None:
        return None
    return select(Person.id).where(Person.site == who.site)


def only_site_media(stmt: Select[T], who: Principal) -> Select[T]:
    """Media of the account's site: a medium has no site of its own, it is its custodian's."""
    people = site_people(who)
    return stmt if people is None else stmt.where(Medium.custodian.in_(people))


def require_medium(db: DbSession, who: Principal, control_number: str) -> None:
    """404 unless medium ``control_number`` is in the account's scope (an unknown one is left
    to the caller's own "no such medium")."""
    people = site_people(who)
    if people is None:
        return
    custodian = db.scalar(select(Medium.custodian)
                          .where(Medium.control_number == control_number))
    if custodian is not None and db.scalar(people.where(Person.id == custodian)) is None:
        raise HTTPException(status_code=404, detail=f"no medium {control_number!r}")


def require_person(db: DbSession, who: Principal, person_id: str, what: str) -> None:
    """404 when ``person_id`` (a medium's custodian or holder) is another site's person."""
    people = site_people(who)
    if people is not None and db.scalar(people.where(Person.id == person_id)) is None:
        raise HTTPException(status_code=404, detail=f"{what} {person_id!r} is not a "
                                                    "registered person")
