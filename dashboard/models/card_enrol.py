"""Enrolments of blank cards at a reader (dashboard.card_enrol): one row per signed command."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import UTCDateTime

OPEN_STATES = ("requested", "sent", "waiting")


class CardEnrolment(Base):
    """An admin's request to personalise the next card at one reader for one person.

    ``state``: requested (not sent yet), sent, waiting (the reader waits for the card), then
    personalised, failed, timeout, refused (the node's outcome) or expired (no answer)."""

    __tablename__ = "card_enrolments"
    __table_args__ = (
        UniqueConstraint("node", "counter", name="uq_card_enrolments_node_counter"),
        Index("ix_card_enrolments_state", "state"),
        Index("ix_card_enrolments_person", "person_id", "requested_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(128))
    node: Mapped[str] = mapped_column(String(64))
    reader: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(128), default="")
    wait_s: Mapped[int] = mapped_column(Integer)
    counter: Mapped[int] = mapped_column(BigInteger)  # the node refuses a counter it has seen
    state: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    card_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(160), nullable=True)
