"""Number-system access logs: import batches, imported rows, operator and terminal mappings.

No column ever holds an individual number: every text field is redacted before it is stored, and
``row_key`` is a hash of the redacted, normalised row (a hash of a raw 12-digit number could be
reversed by trying all 10^11 candidates).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import BigIntPK, UTCDateTime

ACCESS_CATEGORIES = ("login", "access", "export", "delete")


class NumlogBatch(Base):
    """One import (a CSV file, an upload, an API call) and what became of its rows."""

    __tablename__ = "numlog_batches"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255), default="")
    file_sha256: Mapped[str] = mapped_column(String(64), default="")
    encoding: Mapped[str] = mapped_column(String(16), default="")
    preset: Mapped[str] = mapped_column(String(32), default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    imported_by: Mapped[str] = mapped_column(String(64), default="")
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_stored: Mapped[int] = mapped_column(Integer, default=0)
    rows_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    rows_bad: Mapped[int] = mapped_column(Integer, default=0)
    rows_redacted: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class NumberAccess(Base):
    """One row of a number system's access log.

    The seed table's columns: NO, 事業所名, 日時, 画面, 処理, 利用目的, 処理者, 結果 (and 端末).
    """

    __tablename__ = "number_access"
    __table_args__ = (
        UniqueConstraint("row_key", name="uq_number_access_row_key"),
        Index("ix_number_access_ts", "ts"),
        Index("ix_number_access_person_ts", "person_id", "ts"),
        Index("ix_number_access_operator_ts", "operator", "ts"),
        Index("ix_number_access_host_ts", "host", "ts"),
        # the correlation re-run streams rows in binary person order (Python's str order):
        # on PostgreSQL an index in that collation spares it a sort of the whole period
        Index("ix_number_access_person_c_ts", "person_id", "ts",
              postgresql_ops={"person_id": 'COLLATE "C"'}, sqlite_where=text("0")),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    row_key: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    batch_id: Mapped[int | None] = mapped_column(BigIntPK, nullable=True)
    line: Mapped[int] = mapped_column(Integer, default=0)
    no: Mapped[str] = mapped_column(String(64), default="")
    office: Mapped[str] = mapped_column(String(255), default="")
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    screen: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(255), default="")
    purpose: Mapped[str] = mapped_column(String(255), default="")
    operator: Mapped[str] = mapped_column(String(128), default="")
    result: Mapped[str] = mapped_column(String(255), default="")
    terminal: Mapped[str] = mapped_column(String(128), default="")
    category: Mapped[str] = mapped_column(String(16), default="access")
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    person_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    host: Mapped[str | None] = mapped_column(String(128), nullable=True)
    redacted_fields: Mapped[list[str]] = mapped_column(JSON, default=list)


class OperatorMap(Base):
    """A number-system operator (処理者) -> a person, optionally per source; and a default host.

    People also carry ``operator_ids``; this table adds source-specific names and the host an
    operator works on when the log has no terminal column.
    """

    __tablename__ = "numlog_operator_map"
    __table_args__ = (UniqueConstraint("source", "operator", name="uq_numlog_operator"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64), default="")  # "" = any source
    operator: Mapped[str] = mapped_column(String(128))
    person_id: Mapped[str] = mapped_column(String(128))
    host: Mapped[str | None] = mapped_column(String(128), nullable=True)


class TerminalMap(Base):
    """A terminal name as the number system logs it -> the host name the USB agent reports."""

    __tablename__ = "numlog_terminal_map"

    terminal: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
