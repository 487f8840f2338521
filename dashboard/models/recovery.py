"""The dashboard's own nightly database backups (dashboard.recovery.job), one row per run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import BigIntPK, UTCDateTime


class DatabaseBackup(Base):
    __tablename__ = "database_backups"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    result: Mapped[str] = mapped_column(String(16))  # ok | failed
    snapshot_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    database_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # the copy's size
    bytes_stored: Mapped[int] = mapped_column(BigInteger, default=0)  # new in the repository
    repo_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    dump_s: Mapped[float] = mapped_column(Float, default=0.0)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    policy_key: Mapped[str] = mapped_column(String(16), default="")  # sealed | left_out | absent
    error: Mapped[str | None] = mapped_column(String(255), nullable=True)  # a safe message
