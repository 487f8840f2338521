"""The handling-status register (特定個人情報ファイル管理台帳): per file type its name, the
responsible person and department, purpose, retention, deletion status, and who holds access
rights, derived from the policy: the members of the groups given access, marked where they are
number-system users (an operator id maps to them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.audit import append_audit
from dashboard.models.numlog import OperatorMap
from dashboard.models.people import Group, Person
from dashboard.models.reports import Client, DataFile
from dashboard.reports import dates
from dashboard.reports.clients import office_profile
from dashboard.reports.data import ReportError
from dashboard.reports.document import issuer_block
from dashboard.reports.guard import scrub
from dashboard.reports.inputs import GuardedIn
from dashboard.reports.inputs import parse as parse_input
from dashboard.reports.labels import Lang, label
from dashboard.reports.pdf import Doc

COLUMNS = ("reg_kind", "reg_name", "reg_client", "reg_responsible", "reg_department",
           "reg_purpose", "reg_retention", "reg_deletion", "reg_access")
WIDTHS = [28, 30, 26, 22, 24, 40, 22, 30, 45]  # A4 landscape


class DataFileIn(GuardedIn):
    kind: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=255)
    client_id: int | None = None
    responsible_person_id: str | None = Field(default=None, max_length=128)
    department: str = Field(default="", max_length=255)
    purpose: str = Field(default="", max_length=2000)
    retention: str = Field(default="", max_length=255)
    deletion_status: str = Field(default="", max_length=255)
    access_groups: list[str] = Field(default_factory=list, max_length=50)


def parse(data: dict[str, Any]) -> DataFileIn:
    return parse_input(DataFileIn, data)


def save(session: Session, data: DataFileIn, *, actor: str, now: datetime,
         file_id: int | None = None) -> DataFile:
    if data.client_id is not None and session.get(Client, data.client_id) is None:
        raise ReportError(f"client_id: no client {data.client_id}")
    if data.responsible_person_id and session.get(Person, data.responsible_person_id) is None:
        raise ReportError(f"responsible_person_id: no person {data.responsible_person_id!r}")
    known = set(session.scalars(select(Group.id)))
    unknown = [g for g in data.access_groups if g not in known]
    if unknown:
        raise ReportError(f"access_groups: no group {unknown[0]!r}")
    row = session.get(DataFile, file_id) if file_id is not None else None
    if file_id is not None and row is None:
        raise ReportError(f"no register entry {file_id}")
    before = None if row is None else _dict(row)
    if row is None:
        row = DataFile(updated_at=now)
        session.add(row)
    for k, v in data.model_dump().items():
        setattr(row, k, v)
    row.updated_at, row.updated_by = now, actor
    session.flush()
    append_audit(session, actor=actor, action="register.save", target_type="data_file",
                 target_id=str(row.id), before=before, after=_dict(row), now=now)
    return row


def _dict(r: DataFile) -> dict[str, Any]:
    return {k: getattr(r, k) for k in DataFileIn.model_fields}


@dataclass(frozen=True)
class Holder:
    name: str
    operator: bool  # a number-system user (an operator id maps to them)


@dataclass(frozen=True)
class Entry:
    row: DataFile
    client: str
    responsible: str
    holders: list[Holder]


def entries(session: Session) -> list[Entry]:
    groups = {g.id: g for g in session.scalars(select(Group))}
    operators = {m.person_id for m in session.scalars(select(OperatorMap))}
    clients = {c.id: c.name for c in session.scalars(select(Client))}
    people = {p.id: p for p in session.scalars(select(Person))}
    out = []
    for r in session.scalars(select(DataFile).order_by(DataFile.kind, DataFile.name)):
        members: dict[str, Holder] = {}
        for gid in r.access_groups or ():
            g = groups.get(gid)
            for p in (g.members if g is not None else ()):
                if p.active:
                    members[p.id] = Holder(p.name, bool(p.operator_ids) or p.id in operators)
        resp = people.get(r.responsible_person_id or "")
        out.append(Entry(r, clients.get(r.client_id or -1, ""), resp.name if resp else "",
                         sorted(members.values(), key=lambda h: h.name)))
    return out


def cells(e: Entry, lang: Lang) -> list[str]:
    mark = label("reg_operator", lang)
    holders = ("、" if lang == "ja" else ", ").join(
        f"{h.name}({mark})" if h.operator else h.name for h in e.holders)
    return [scrub(v) for v in (e.row.kind, e.row.name, e.client or label("reg_office", lang),
                               e.responsible, e.row.department, e.row.purpose,
                               e.row.retention, e.row.deletion_status, holders or "-")]


def register_pdf(session: Session, lang: Lang, zone: ZoneInfo, now: datetime) -> bytes:
    profile = office_profile(session)
    style: dates.DateStyle = "era" if profile.date_style == "era" else "western"
    doc = Doc()
    doc.title(label("reg_title", lang), label("reg_as_of", lang, date=dates.day(
        now.astimezone(zone).date(), lang, style)))
    for k, v in issuer_block(profile, lang):
        doc.right(f"{k} {v}")
    doc.table([label(c, lang) for c in COLUMNS], [cells(e, lang) for e in entries(session)]
              or [[label("none_rows", lang)] + [""] * (len(COLUMNS) - 1)], WIDTHS)
    return doc.render(title=label("reg_title", lang), footer=label("reg_title", lang),
                      page_label=lambda n, total: label("page", lang, page=n, pages=total),
                      wide=True)
