"""Correlation findings, issued reports (with the log heads they sealed), deletion certificates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import BigIntPK, UTCDateTime


class Finding(Base):
    """One rule hit with its joined evidence. ``dedupe_key`` is stable: incremental and full
    re-runs over the same data produce the same keys, so nothing is found (or alarmed) twice."""

    __tablename__ = "correlation_findings"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_correlation_findings_key"),
        Index("ix_correlation_findings_at", "at"),
        Index("ix_correlation_findings_rule_at", "rule", "at"),
        Index("ix_correlation_findings_person_at", "person_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(255))
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    person_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    node: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject: Mapped[str] = mapped_column(String(255), default="")
    explanation_ja: Mapped[str] = mapped_column(Text, default="")
    explanation_en: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    anomaly_id: Mapped[int | None] = mapped_column(BigIntPK, nullable=True)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime())
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IssuedReport(Base):
    """A monthly handling report as issued: the file's hash and the log heads it sealed."""

    __tablename__ = "issued_reports"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), default="monthly")
    month: Mapped[str] = mapped_column(String(7))
    org: Mapped[str] = mapped_column(String(255))
    lang: Mapped[str] = mapped_column(String(2))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_by: Mapped[str] = mapped_column(String(64), default="")
    seal: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seal_sha256: Mapped[str] = mapped_column(String(64))
    file_sha256: Mapped[str] = mapped_column(String(64), default="")
    # document number (年-連番), the client (None: the internal all-clients report), and the
    # issue it corrects with the reason stated in it
    number: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    client_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    supersedes: Mapped[int | None] = mapped_column(BigIntPK, nullable=True, index=True)
    supersede_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class DeletionCertificate(Base):
    """削除証明書 / 廃棄証明書: date, person in charge, reason, subject, result, method."""

    __tablename__ = "deletion_certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    org: Mapped[str] = mapped_column(String(255))
    processed_on: Mapped[date] = mapped_column(Date)
    person_in_charge: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(255))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_by: Mapped[str] = mapped_column(String(64), default="")
    # the client it is issued to, and the record that proves the deletion: numlog (row key),
    # backup_purge (node:seq of backup.pruned), media (media_records id) or manual
    client_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    source_kind: Mapped[str] = mapped_column(String(16), default="manual")
    source_ref: Mapped[str] = mapped_column(String(255), default="")
    lang: Mapped[str] = mapped_column(String(2), default="ja")
