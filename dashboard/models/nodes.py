"""Nodes (gateways, USB agents, backup jobs) and their health, as the ingest sees them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from controller.events import NodeRole, parse_roles
from dashboard.db import Base
from dashboard.models.types import UTCDateTime

BIGINT = BigInteger().with_variant(Integer(), "sqlite")

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
    # the roles the admin approved it for (controller.events.NodeRole, comma-separated): the
    # ingest refuses a kind none of them may emit (controller.events.may_emit); "" = none yet
    roles: Mapped[str] = mapped_column(String(128), default="", server_default="")
    # the first seq ``public_key`` signs: events below it were signed by an earlier key
    # (node_keys), after a rotation
    key_since_seq: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")
    # a key the node announces that differs from its approved one and came with no valid
    # handover (a lost key replaced): an admin may approve it as the node's new key
    announced_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
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
    def role_set(self) -> frozenset[NodeRole]:
        try:
            return parse_roles(self.roles)
        except ValueError:  # a name no release defines grants nothing
            return frozenset()

    @property
    def approved(self) -> bool:
        return self.key_status == "approved" and self.public_key is not None

    def __repr__(self) -> str:
        return f"Node(name={self.name!r}, key_status={self.key_status!r}, state={self.state!r})"


class NodeKey(Base):
    """A key a node signed with before its current one: ``from_seq``..``until_seq - 1``.
    ``retired`` keys still verify their own range (events in flight at the rotation);
    ``revoked`` keys verify nothing (their events are refused, counted and raised)."""

    __tablename__ = "node_keys"

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=True)
    node: Mapped[str] = mapped_column(String(64), index=True)
    public_key: Mapped[str] = mapped_column(String(64))
    from_seq: Mapped[int] = mapped_column(BigInteger)
    until_seq: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # retired | revoked
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime())
    replaced_by: Mapped[str] = mapped_column(String(64))  # an admin, or "node" (signed handover)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
