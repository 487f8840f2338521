"""Anomalies: raised by ingest and correlation, acknowledged by admins with a reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import BigIntPK, UTCDateTime

ANOMALY_STATES = ("open", "acknowledged", "resolved")


def _first_seen(context: Any) -> datetime | None:
    """An item inserted without ``at`` happened when it was first seen."""
    value = context.get_current_parameters().get("first_seen_at")
    return value if isinstance(value, datetime) else None


class Anomaly(Base):
    __tablename__ = "anomalies"
    __table_args__ = (
        Index("ix_anomalies_state_last", "state", "last_seen_at"),
        Index("ix_anomalies_dedupe", "dedupe_key", "state"),
        Index("ix_anomalies_state_at", "state", "at"),
        Index("ix_anomalies_at", "at"),
        Index("ix_anomalies_person_at", "person_id", "at"),
        Index("ix_anomalies_place_at", "place", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    node: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(255))
    count: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), default="open")
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # what the review queue filters and sorts on: when it happened (a finding's time, else when
    # first seen), whom and where it concerns (a door, or a host), who works on it
    at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True,
                                                default=_first_seen)
    person_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    place: Mapped[str | None] = mapped_column(String(128), nullable=True)
    host: Mapped[str | None] = mapped_column(String(128), nullable=True)
    assignee: Mapped[str | None] = mapped_column(String(64), nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    escalated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
