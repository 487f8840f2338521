"""The media ledger (媒体管理台帳): numbered USB media, their lifecycle records, the number counter.

``media_counters`` keeps the highest control number ever issued per prefix, so a number is never
issued twice, even after its medium was disposed of. Every lifecycle transition is one row of
``media_records`` (who, when, before/after state and the transition's details), written in the
same transaction as the change and as the hash-chained audit record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import BigIntPK, UTCDateTime


class MediaCounter(Base):
    """Highest control number issued for a prefix (never decreases)."""

    __tablename__ = "media_counters"

    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    highest_issued: Mapped[int] = mapped_column(Integer, default=0)


class Medium(Base):
    """One registered medium: identity, current state, custodian, where it may be used."""

    __tablename__ = "media"
    __table_args__ = (
        Index("ix_media_state", "state"),
        Index("ix_media_holder", "holder"),
        Index("ix_media_custodian", "custodian"),
    )

    control_number: Mapped[str] = mapped_column(String(32), primary_key=True)
    # identity
    vendor_id: Mapped[str] = mapped_column(String(4))
    product_id: Mapped[str] = mapped_column(String(4))
    serial: Mapped[str | None] = mapped_column(String(255), nullable=True)
    descriptors_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    interfaces: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_digest: Mapped[str] = mapped_column(String(64))
    # description
    media_type: Mapped[str] = mapped_column(String(100))
    make: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[str] = mapped_column(String(50), default="")
    # state and use
    state: Mapped[str] = mapped_column(String(16))
    custodian: Mapped[str] = mapped_column(String(128))
    hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    registered_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # current check-out (cleared on store / wipe / found)
    holder: Mapped[str | None] = mapped_column(String(128), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(200), nullable=True)
    due_back: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    requested_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # last wipe
    wipe_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    wipe_technique: Mapped[str | None] = mapped_column(String(200), nullable=True)
    wipe_tool: Mapped[str | None] = mapped_column(String(200), nullable=True)
    wiped_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wipe_verifier: Mapped[str | None] = mapped_column(String(200), nullable=True)
    wipe_verification: Mapped[str | None] = mapped_column(String(200), nullable=True)
    wiped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # disposal (terminal)
    disposal_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    disposal_certificate: Mapped[str | None] = mapped_column(String(64), nullable=True)
    disposal_destination: Mapped[str | None] = mapped_column(String(32), nullable=True)
    disposal_verifier: Mapped[str | None] = mapped_column(String(200), nullable=True)
    disposed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    disposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lost_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # periodic erasure (定期的なデータ消去): days between wipes, for this medium; None = the
    # interval of its media type (media_wipe_intervals), if any
    wipe_interval_days: Mapped[int | None] = mapped_column(Integer, nullable=True)


class MediaWipeInterval(Base):
    """Days between wipes for every medium of a type (a medium's own interval wins)."""

    __tablename__ = "media_wipe_intervals"

    media_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    interval_days: Mapped[int] = mapped_column(Integer)


class MediumRecord(Base):
    """One lifecycle transition of a medium (append-only)."""

    __tablename__ = "media_records"
    __table_args__ = (
        Index("ix_media_records_medium_at", "control_number", "at"),
        Index("ix_media_records_holder_at", "holder", "at"),
        Index("ix_media_records_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    control_number: Mapped[str] = mapped_column(
        ForeignKey("media.control_number", ondelete="RESTRICT")
    )
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    holder: Mapped[str | None] = mapped_column(String(128), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(200), nullable=True)
    due_back: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    verifier: Mapped[str | None] = mapped_column(String(200), nullable=True)
    certificate_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
