"""Site card master keys (dashboard.cardkeys): sealed, never shown, rotated with a changeover."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import UTCDateTime


class CardMasterKey(Base):
    __tablename__ = "card_master_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # active, previous, retired
    sealed: Mapped[str | None] = mapped_column(String(128), nullable=True)  # None once retired
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
