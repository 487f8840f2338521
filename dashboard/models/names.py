"""Display names an admin gives the things nodes report by id: readers, hosts, nodes, the site.

Doors, printers and groups carry their own ``name`` column; people theirs. Everything a person
reads names a thing through ``dashboard.names.Names``, which falls back to the id only when no
name was ever given.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import UTCDateTime

NAME_KINDS = ("reader", "host", "node", "site")


class DisplayName(Base):
    __tablename__ = "display_names"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    ident: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(64), default="")
