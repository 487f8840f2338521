"""Client companies, the 事業所名 each maps from, and the issuing office's profile: audited
edits, validated input (no individual number in any field, clear errors naming the field)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.audit import append_audit
from dashboard.models.numlog import NumberAccess
from dashboard.models.reports import MEASURE_KINDS, Client, ClientOffice, OfficeProfile
from dashboard.reports.data import ReportError
from dashboard.reports.guard import has_number
from dashboard.reports.inputs import GuardedIn

# the office's own policy lines per kind of measure, as in the seed's report (settings)
DEFAULT_MEASURES: dict[str, list[str]] = {
    "organizational": ["基本方針の策定", "取扱規程の策定",
                       "事務の範囲・特定個人情報の範囲・担当者の明確化"],
    "human": ["担当者の監督", "担当者の教育", "秘密保持に関する誓約書の取り交わし"],
    "physical": ["特定個人情報を取扱う区域の制限(入退室管理)", "機器及び電子媒体等の盗難の防止",
                 "電子媒体等の持出しの記録"],
    "technical": ["アクセス制御", "アクセス者の識別と認証", "不正アクセスの防止",
                  "バックアップの取得と検証"],
}
DEFAULT_SUBCONTRACTING = "無し"


class ClientIn(GuardedIn):
    name: str = Field(min_length=1, max_length=255)
    address: str = Field(default="", max_length=255)
    contact: str = Field(default="", max_length=255)
    phone: str = Field(default="", max_length=64)
    reporting_day: int = Field(default=10, ge=1, le=28)
    active: bool = True


class OfficeIn(GuardedIn):
    name: str = Field(min_length=1, max_length=255)
    address: str = Field(default="", max_length=255)
    phone: str = Field(default="", max_length=64)
    representative: str = Field(default="", max_length=255)
    date_style: Literal["era", "western"] = "era"
    subcontracting: str = Field(default=DEFAULT_SUBCONTRACTING, min_length=1, max_length=2000)
    organizational: list[str] = Field(default_factory=list, max_length=20)
    human: list[str] = Field(default_factory=list, max_length=20)
    physical: list[str] = Field(default_factory=list, max_length=20)
    technical: list[str] = Field(default_factory=list, max_length=20)

    @field_validator(*MEASURE_KINDS)
    @classmethod
    def _lines(cls, value: list[str]) -> list[str]:
        lines = [v.strip() for v in value if v.strip()]
        if any(len(v) > 200 for v in lines):
            raise ValueError("a policy line is at most 200 characters")
        return lines


def save_client(session: Session, data: ClientIn, *, actor: str, now: datetime,
                client_id: int | None = None) -> Client:
    clash = session.scalars(select(Client).where(Client.name == data.name)).first()
    if clash is not None and clash.id != client_id:
        raise ReportError(f"name: a client named {data.name!r} exists already")
    row = session.get(Client, client_id) if client_id is not None else None
    if client_id is not None and row is None:
        raise ReportError(f"no client {client_id}")
    before = None if row is None else _client_dict(row)
    if row is None:
        row = Client(created_at=now, **data.model_dump())
        session.add(row)
    else:
        for k, v in data.model_dump().items():
            setattr(row, k, v)
    session.flush()
    append_audit(session, actor=actor, action="client.save", target_type="client",
                 target_id=str(row.id), before=before, after=_client_dict(row), now=now)
    return row


def _client_dict(c: Client) -> dict[str, Any]:
    return {"name": c.name, "address": c.address, "contact": c.contact, "phone": c.phone,
            "reporting_day": c.reporting_day, "active": c.active}


def map_office(session: Session, office: str, client_id: int | None, *, actor: str,
               now: datetime) -> None:
    """Map a 事業所名 of the number-access log to a client (None: remove the mapping)."""
    office = office.strip()
    if not office or len(office) > 255 or has_number(office):
        raise ReportError("office: 1-255 characters, no individual number")
    if client_id is not None and session.get(Client, client_id) is None:
        raise ReportError(f"no client {client_id}")
    row = session.get(ClientOffice, office)
    before = None if row is None else {"client_id": row.client_id}
    if client_id is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(ClientOffice(office=office, client_id=client_id))
    else:
        row.client_id = client_id
    session.flush()
    append_audit(session, actor=actor, action="client.map_office", target_type="office",
                 target_id=office, before=before, after={"client_id": client_id}, now=now)


def clients(session: Session, *, active_only: bool = False) -> list[Client]:
    q = select(Client).order_by(Client.name)
    if active_only:
        q = q.where(Client.active.is_(True))
    return list(session.scalars(q))


def office_map(session: Session) -> dict[str, int]:
    return {o.office: o.client_id for o in session.scalars(select(ClientOffice))}


def unmapped_offices(session: Session) -> list[str]:
    mapped = set(office_map(session))
    seen = session.scalars(select(NumberAccess.office).distinct())
    return sorted(o for o in seen if o and o not in mapped)


def office_profile(session: Session) -> OfficeProfile:
    """The stored profile, or defaults (not stored) until an admin saves one."""
    row = session.get(OfficeProfile, 1)
    if row is not None:
        return row
    return OfficeProfile(id=1, name="", address="", phone="", representative="",
                         date_style="era", subcontracting=DEFAULT_SUBCONTRACTING,
                         measures=dict(DEFAULT_MEASURES), updated_by="")


def save_office(session: Session, data: OfficeIn, *, actor: str, now: datetime
                ) -> OfficeProfile:
    row = session.get(OfficeProfile, 1)
    before = None if row is None else _office_dict(row)
    values = data.model_dump()
    measures = {k: values.pop(k) for k in MEASURE_KINDS}
    if row is None:
        row = OfficeProfile(id=1)
        session.add(row)
    for k, v in values.items():
        setattr(row, k, v)
    row.measures, row.updated_at, row.updated_by = measures, now, actor
    session.flush()
    append_audit(session, actor=actor, action="office.save", target_type="office",
                 target_id="1", before=before, after=_office_dict(row), now=now)
    return row


def _office_dict(o: OfficeProfile) -> dict[str, Any]:
    return {"name": o.name, "address": o.address, "phone": o.phone,
            "representative": o.representative, "date_style": o.date_style,
            "subcontracting": o.subcontracting, "measures": o.measures}


def measures_of(profile: OfficeProfile) -> dict[str, list[str]]:
    got = profile.measures or {}
    return {k: list(got.get(k) or DEFAULT_MEASURES[k]) for k in MEASURE_KINDS}
