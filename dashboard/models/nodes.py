"""Nodes (gateways, USB agents, backup jobs) and their health, as the ingest sees them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import UTCDateTime

KEY_STATUSES = ("pending", "approved", "revoked")


class Node(Base):
    """One node: its enrolled key, its ingest cursor and its health projection."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    # enrolment: the key a node announces in its retained state message, approved by an admin
    public_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    key_status: Mapped[str] = mapped_column(String(16), default="pending")
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # ingest cursor: highest contiguous seq stored (acked), highest seq stored, its hash
    contiguous_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    contiguous_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    max_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    max_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    gap_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    events_stored: Mapped[int] = mapped_column(BigInteger, default=0)
    # counters of the signed receipts sent to the node (controller.receipts): each new ack or
    # resend request carries a higher one, so the node refuses a replayed older receipt
    ack_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    resend_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    # health projection
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    state_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    health: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    boot: Mapped[str | None] = mapped_column(String(64), nullable=True)
    clock_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    clock_offset_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    policy_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    policy_applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    policy_rejected: Mapped[str | None] = mapped_column(String(255), nullable=True)

    @property
    def approved(self) -> bool:
        return self.key_status == "approved" and self.public_key is not None

    def __repr__(self) -> str:
        return f"Node(name={self.name!r}, key_status={self.key_status!r}, state={self.state!r})"
