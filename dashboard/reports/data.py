"""What a monthly handling report lists, for one client (or all of them) and one month: the
rows themselves, never counts kept apart from them (a document's counts are the lengths of these
lists, see dashboard.reports.document). Read-only; names resolved, language-neutral.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models.numlog import NumberAccess
from dashboard.models.reports import Client, ClientOffice
from dashboard.reports.names import Names

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MEDIA_ACTIONS = ("check_out", "return", "wipe", "dispose")


class ReportError(ValueError):
    """The report cannot be made (bad month, unknown client, bad file)."""


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    m = MONTH_RE.match(month or "")
    if not m:
        raise ReportError(f"month must look like 2026-11, not {month[:20]!r}")
    y, mo = int(m.group(1)), int(m.group(2))
    start = datetime(y, mo, 1, tzinfo=zone)
    end = datetime(y + (mo == 12), 1 if mo == 12 else mo + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class UseRow:
    """A row of the number system's log (a use, or a log-in)."""

    ts: datetime
    no: str
    office: str
    screen: str
    action: str
    purpose: str
    operator: str  # the code in the log
    operator_name: str | None  # the person it maps to (None: not mapped)
    result: str
    category: str  # login, access, export, delete
    ok: bool
    client_id: int | None
    person_id: str | None
    row_key: str


@dataclass(frozen=True)
class EntryRow:
    ts: datetime
    person: str  # name ("" for an unknown card)
    door: str
    direction: str  # in, out
    granted: bool
    reason: str | None


@dataclass(frozen=True)
class PcRow:
    """A log-on at a room PC, or an operation on the folders that hold individual numbers."""

    ts: datetime
    person: str  # name ("" when nobody is known: a card nobody holds, a local account)
    host: str  # display name
    what: str  # logon | file_op
    ok: bool  # granted / succeeded
    code: str  # the log-on's denial reason, or the file operation (read, write, copy...)
    files: int = 0


@dataclass(frozen=True)
class PrintRow:
    ts: datetime
    person: str
    printer: str
    pages: int | None
    after: datetime | None  # the number access it followed


@dataclass(frozen=True)
class MediaRow:
    ts: datetime
    control_number: str
    action: str  # check_out, return, wipe, dispose
    person: str
    purpose: str


@dataclass(frozen=True)
class DeletionRow:
    number: str
    processed_on: date
    method: str
    subject: str
    result: str
    issued_at: datetime


@dataclass(frozen=True)
class Night:
    day: date
    status: str  # ok, failed, missing
    detail: str = ""


@dataclass(frozen=True)
class VerifyRow:
    ts: datetime
    mode: str  # structure, read_data, drill
    ok: bool


@dataclass(frozen=True)
class ReviewRow:
    anomaly_id: int
    at: datetime
    kind: str
    severity: str
    subject: tuple[str, ...]  # names, never ids
    state: str  # open, acknowledged, resolved
    by: str
    reason: str
    incident: bool | None  # an admin's classification (None: not classified)


@dataclass
class MonthData:
    month: str
    client: Client | None
    since: datetime
    until: datetime
    zone: ZoneInfo
    uses: list[UseRow] = field(default_factory=list)
    logins: list[UseRow] = field(default_factory=list)
    handlers: list[str] = field(default_factory=list)  # names of who used this client's numbers
    entries: list[EntryRow] = field(default_factory=list)
    prints: list[PrintRow] = field(default_factory=list)
    media: list[MediaRow] = field(default_factory=list)
    deletions: list[DeletionRow] = field(default_factory=list)
    nights: list[Night] = field(default_factory=list)
    verifies: list[VerifyRow] = field(default_factory=list)
    reviews: list[ReviewRow] = field(default_factory=list)
    pcs: list[PcRow] = field(default_factory=list)  # room PCs: log-ons, number-data operations
    first_night: date | None = None  # the first night the system existed
    handler_ids: set[str] = field(default_factory=set)
    row_keys: set[str] = field(default_factory=set)


def client_of(session: Session, client_id: int | None) -> Client | None:
    if client_id is None:
        return None
    client = session.get(Client, client_id)
    if client is None:
        raise ReportError(f"no client {client_id}")
    return client


def number_rows(session: Session, since: datetime, until: datetime, names: Names,
                offices: dict[str, int] | None = None) -> list[UseRow]:
    """Every row of the number system's log in [since, until), in time order, with its
    client (through the 事業所名 mapping) and its operator's name."""
    if offices is None:
        offices = {o.office: o.client_id for o in session.scalars(select(ClientOffice))}
    out = []
    for r in session.scalars(select(NumberAccess).where(
            NumberAccess.ts >= since, NumberAccess.ts < until)
            .order_by(NumberAccess.ts, NumberAccess.id)):
        name = names.people.get(r.person_id) if r.person_id else None
        out.append(UseRow(ts=r.ts, no=r.no, office=r.office, screen=r.screen, action=r.action,
                          purpose=r.purpose, operator=r.operator, operator_name=name,
                          result=r.result, category=r.category, ok=r.ok,
                          client_id=offices.get(r.office), person_id=r.person_id,
                          row_key=r.row_key))
    return out
