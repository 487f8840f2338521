"""What the office hands its clients: client companies (and the 事業所名 each maps from), the
issuing office's profile, the files of issued documents (kept as issued), the admin's
classification of review items as incidents, and the handling-status register
(特定個人情報ファイル管理台帳).

No column holds an individual number: every free text is checked by the number guard before it
is stored (dashboard.reports.guard).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import BigIntPK, UTCDateTime

MEASURE_KINDS = ("organizational", "human", "physical", "technical")


class Client(Base):
    """A client company the office handles individual numbers for (委託元)."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    address: Mapped[str] = mapped_column(String(255), default="")
    contact: Mapped[str] = mapped_column(String(255), default="")  # department / person
    phone: Mapped[str] = mapped_column(String(64), default="")
    reporting_day: Mapped[int] = mapped_column(Integer, default=10)  # day of the next month
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ClientOffice(Base):
    """A 事業所名 as the number system logs it -> the client it belongs to."""

    __tablename__ = "client_offices"

    office: Mapped[str] = mapped_column(String(255), primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"),
                                           index=True)


class OfficeProfile(Base):
    """The issuing office (発信者) and its own wording: one row (id 1)."""

    __tablename__ = "office_profile"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255), default="")
    address: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    representative: Mapped[str] = mapped_column(String(255), default="")
    date_style: Mapped[str] = mapped_column(String(8), default="era")  # era or western
    subcontracting: Mapped[str] = mapped_column(Text, default="")
    measures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class IssuedFile(Base):
    """One rendering (PDF, CSV, XLSX) of an issued report or certificate, byte for byte as
    handed out; its SHA-256 is also in the audit record of the issue."""

    __tablename__ = "issued_files"
    __table_args__ = (Index("ix_issued_files_sha256", "sha256"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    report_id: Mapped[int | None] = mapped_column(BigIntPK, nullable=True, index=True)
    certificate_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    fmt: Mapped[str] = mapped_column(String(8))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer, default=0)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class IncidentClassification(Base):
    """An admin's judgement of a review item (anomaly): an incident (漏えい等事案) or not."""

    __tablename__ = "incident_classifications"

    anomaly_id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    incident: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    classified_by: Mapped[str] = mapped_column(String(64), default="")
    classified_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DataFile(Base):
    """One file type of the handling-status register: name, responsible person and
    department, purpose, retention, deletion status; access rights come from its groups."""

    __tablename__ = "personal_data_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(255))  # 特定個人情報ファイルの種類
    name: Mapped[str] = mapped_column(String(255))  # 名称
    client_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    responsible_person_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    department: Mapped[str] = mapped_column(String(255), default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    retention: Mapped[str] = mapped_column(String(255), default="")
    deletion_status: Mapped[str] = mapped_column(String(255), default="")
    access_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(64), default="")
