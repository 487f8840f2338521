"""Stored events (every kind, generically) and the projections the views read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import BigIntPK, UTCDateTime


class StoredEvent(Base):
    """One verified event, exactly as the node signed it (node, seq unique)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("node", "seq", name="uq_events_node_seq"),
        Index("ix_events_ts", "ts"),
        Index("ix_events_kind_ts", "kind", "ts"),
        Index("ix_events_person_ts", "person_id", "ts"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    node: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    boot: Mapped[str] = mapped_column(String(64))
    clock: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    door: Mapped[str | None] = mapped_column(String(128), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    sig: Mapped[str] = mapped_column(String(86))
    chain_ok: Mapped[bool] = mapped_column(Boolean, default=True)


class DoorAccess(Base):
    """Projection of door.access: one row per tap, granted or denied."""

    __tablename__ = "door_access"
    __table_args__ = (
        UniqueConstraint("node", "seq", name="uq_door_access_node_seq"),
        Index("ix_door_access_ts", "ts"),
        Index("ix_door_access_door_ts", "door", "ts"),
        Index("ix_door_access_person_ts", "person_id", "ts"),
        Index("ix_door_access_granted_ts", "granted", "ts"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    node: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    door: Mapped[str] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(8))
    granted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    person_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    second_person_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reader: Mapped[str | None] = mapped_column(String(128), nullable=True)
    credential: Mapped[str | None] = mapped_column(String(16), nullable=True)  # verified/weak/…


class Presence(Base):
    """A person's stay behind a door: entered_at .. left_at (NULL while inside).

    ``entered_at`` is NULL for an exit without a recorded entry.
    """

    __tablename__ = "presence"
    __table_args__ = (
        Index("ix_presence_open", "left_at", "door"),
        Index("ix_presence_person_entered", "person_id", "entered_at"),
        Index("ix_presence_door_entered", "door", "entered_at"),
        # the correlation re-run merges presence with number-access rows in binary person
        # order: on PostgreSQL an index in that collation spares it a sort
        Index("ix_presence_person_c_entered", "person_id", "entered_at",
              postgresql_ops={"person_id": 'COLLATE "C"'}, sqlite_where=text("0")),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(128))
    door: Mapped[str] = mapped_column(String(128))
    entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    enter_ref: Mapped[str | None] = mapped_column(String(96), nullable=True)
    leave_ref: Mapped[str | None] = mapped_column(String(96), nullable=True)
