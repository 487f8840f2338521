"""Camera stills as uploaded by the nodes: encrypted at rest (AES-GCM, dashboard.camera.store).

The signed half (SHA-256, size, the record it belongs to, the clip link) is the node's
camera.still event in ``events``; a row here holds only the image. Retention empties
``ciphertext`` and sets ``purged_at``: the events stay.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import BigIntPK, UTCDateTime


class CameraImage(Base):
    __tablename__ = "camera_images"
    __table_args__ = (UniqueConstraint("still_id", name="uq_camera_images_still_id"),
                      Index("ix_camera_images_received", "received_at"))

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    still_id: Mapped[str] = mapped_column(String(96))  # the camera.still event id
    node: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    size: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(16))  # which storage key sealed it
    nonce: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
