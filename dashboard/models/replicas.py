"""Dashboard replicas on one PostgreSQL (dashboard.replicas): who is alive, which replica
stores which node's events, and who held the leader's lock (policy signer, scheduled work)
when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db import Base
from dashboard.models.types import UTCDateTime

BIGINT = BigInteger().with_variant(Integer(), "sqlite")


class Replica(Base):
    """A running replica's heartbeat: alive while ``seen_at`` is within the lease time."""

    __tablename__ = "replicas"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class IngestLease(Base):
    """The one replica that stores a node's events until ``expires_at`` (renewed by its
    heartbeat); ``epoch`` rises at every change of holder."""

    __tablename__ = "ingest_leases"

    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    epoch: Mapped[int] = mapped_column(BIGINT, default=1)


class LeaderTerm(Base):
    """Each time a replica took the leader's lock (and when it let go, if it could say)."""

    __tablename__ = "leader_terms"

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=True)
    holder: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
