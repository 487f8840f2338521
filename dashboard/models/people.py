"""People, cards, groups, doors, printers, weekly windows and site settings: the policy source."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Date, ForeignKey, Integer, String, Table, Time, text
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.db import Base
from dashboard.models.types import UTCDateTime

DEFAULT_SITE = "site1"  # DashboardSettings.site's default


def single_site(connection: Any) -> str:
    """The installation's one site, for a row made without naming its site (and for the
    migration's backfill): the only site with settings, else the only site of the nodes, else
    the default site of a fresh single box. Several sites: a row must name its own (an error
    that says so, rather than a guess)."""
    for query in ("SELECT site FROM site_settings", "SELECT DISTINCT site FROM nodes"):
        sites = sorted({row[0] for row in connection.execute(text(query))})
        if len(sites) > 1:
            raise ValueError(f"this installation has several sites ({', '.join(sites)}): "
                             "say which site the person, group, door or printer belongs to")
        if sites:
            return str(sites[0])
    return DEFAULT_SITE


def _site_default(context: Any) -> str:
    return single_site(context.connection)


group_members = Table(
    "group_members",
    Base.metadata,
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
)
group_doors = Table(
    "group_doors",
    Base.metadata,
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("door_id", ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True),
)
group_printers = Table(
    "group_printers",
    Base.metadata,
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("printer_id", ForeignKey("printers.id", ondelete="CASCADE"), primary_key=True),
)


class Person(Base):
    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)  # site-local dates,
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)  # until inclusive
    operator_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    cups_users: Mapped[list[str]] = mapped_column(JSON, default=list)
    host_accounts: Mapped[list[str]] = mapped_column(JSON, default=list)  # room PCs' accounts
    # the person's home site (many sites): that site's security admins manage the person and
    # their cards; rights at other sites come from groups of those sites (Group.site)
    site: Mapped[str] = mapped_column(String(64), index=True, default=_site_default)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    cards: Mapped[list[Card]] = relationship(
        back_populates="person", cascade="all, delete-orphan", order_by="Card.uid"
    )
    groups: Mapped[list[Group]] = relationship(
        secondary=group_members, back_populates="members", order_by="Group.id"
    )


class Card(Base):
    """An IC card UID (uppercase hex) issued to one person; revoked cards stay for history."""

    __tablename__ = "cards"

    uid: Mapped[str] = mapped_column(String(128), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(128), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enrolled_by: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # "uid" (weak), "desfire" or "felica_lite_s" (holds a secroom key: must prove it)
    credential: Mapped[str] = mapped_column(String(16), default="uid", server_default="uid")
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # site key it holds

    person: Mapped[Person] = relationship(back_populates="cards")


class Door(Base):
    __tablename__ = "doors"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    two_person: Mapped[bool] = mapped_column(Boolean, default=False)
    two_person_window_s: Mapped[int] = mapped_column(Integer, default=10)
    anti_passback: Mapped[bool] = mapped_column(Boolean, default=False)
    require_verified: Mapped[bool] = mapped_column(Boolean, default=False,
                                                   server_default=sa_false())
    # the site whose room the door (or rack) is in; its gateway is a node of that site
    site: Mapped[str] = mapped_column(String(64), index=True, default=_site_default)


class Printer(Base):
    __tablename__ = "printers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    site: Mapped[str] = mapped_column(String(64), index=True, default=_site_default)


class Group(Base):
    """A right: which doors and printers, in which weekly windows, and on public holidays or not."""

    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    on_holidays: Mapped[bool] = mapped_column(Boolean, default=False)
    hosts: Mapped[list[str]] = mapped_column(JSON, default=list)  # room PCs (card log-on)
    host_admin: Mapped[bool] = mapped_column(Boolean, default=False)  # sudo on those hosts
    # a right at one site: its doors and printers are that site's; its members may come from
    # any site (a person of another site allowed here), named by this site's or HQ's admins
    site: Mapped[str] = mapped_column(String(64), index=True, default=_site_default)

    members: Mapped[list[Person]] = relationship(
        secondary=group_members, back_populates="groups", order_by="Person.id"
    )
    doors: Mapped[list[Door]] = relationship(secondary=group_doors, order_by="Door.id")
    printers: Mapped[list[Printer]] = relationship(secondary=group_printers, order_by="Printer.id")
    windows: Mapped[list[TimeWindow]] = relationship(
        back_populates="group", cascade="all, delete-orphan", order_by="TimeWindow.id"
    )


class TimeWindow(Base):
    """A weekly window of a group: days (0 = Monday) from start to end, site local time."""

    __tablename__ = "time_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    days: Mapped[list[int]] = mapped_column(JSON)
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)

    group: Mapped[Group] = relationship(back_populates="windows")


class SiteSettings(Base):
    """Per-site settings that go into the policy, and the policy publication state."""

    __tablename__ = "site_settings"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Tokyo")
    lockdown: Mapped[bool] = mapped_column(Boolean, default=False)
    lockdown_doors: Mapped[list[str]] = mapped_column(JSON, default=list)
    lockdown_reason: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    lockdown_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lockdown_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    policy_dirty: Mapped[bool] = mapped_column(Boolean, default=True)
    policy_dirty_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
