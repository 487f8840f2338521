"""Projections kept up to date by the ingest, in the same transaction as the events.

Each projection takes the event's payload as its kind's model (``controller.events.KINDS``,
validated by the ingest, see ingest/payloads.py), never the raw ``data``.

- ``door_access``: one row per door.access event (filter by time, person, door, granted).
- ``presence``: intervals per (person, door) from granted in/out taps; ``left_at`` NULL while
  inside. Events arriving late (a resent range) rebuild the affected person's intervals.
- node health on ``nodes``: clock state, policy version applied, boot, last event.
Read helpers for the views are at the bottom.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session

from controller.envelope import Event
from controller.events import DoorAccess as AccessEvent
from controller.events import NodeClock, PolicyApplied, PolicyRejected
from dashboard.bulk import insert_rows, row_writer
from dashboard.models.events import DoorAccess, Presence
from dashboard.models.nodes import Node


@lru_cache(maxsize=8192)
def event_time(ts: str) -> datetime:
    """The envelope's ``ts`` (pattern-checked by parse) as an aware UTC datetime; fast path."""
    if len(ts) != 27 or ts[-1] != "Z":
        raise ValueError(f"not an envelope timestamp: {ts!r}")
    return datetime.fromisoformat(ts[:-1]).replace(tzinfo=UTC)


def _str(data: dict[str, Any], key: str, limit: int = 128) -> str | None:
    value = data.get(key)
    return value[:limit] if isinstance(value, str) and value else None


def event_refs(event: Event) -> tuple[str | None, str | None]:
    """(person_id, door) of an event, if its data names them."""
    return _str(event.data, "person_id"), _str(event.data, "door")


def _cut(value: str | None, limit: int = 128) -> str | None:
    return value[:limit] if value else None


def door_access_row(event: Event, access: AccessEvent) -> dict[str, Any]:
    """The door_access row of a door.access event, from its validated payload."""
    granted = access.granted
    return {
        "node": event.node,
        "seq": event.seq,
        "ts": event_time(event.ts),
        "door": access.door,
        "direction": access.direction,
        "granted": granted,
        "reason": None if granted else access.reason,
        "person_id": _cut(access.person_id),
        "second_person_id": _cut(access.second_person_id),
        "uid": _cut(access.card, 64),
        "reader": _cut(access.reader),
        "credential": access.credential,
    }


HEALTH_KINDS = frozenset({"node.started", "node.clock", "policy.applied", "policy.rejected"})


def note_last_event(node: Node, event: Event) -> None:
    """Last event time and clock state, from the newest event of a batch."""
    when = event_time(event.ts)
    if node.last_event_at is None or when >= node.last_event_at:
        node.last_event_at = when
        node.clock_state = event.clock


def apply_node_health(node: Node, event: Event, data: BaseModel) -> None:
    """Update a node's health projection from one of its HEALTH_KINDS events and its validated
    payload (events applied in seq order)."""
    note_last_event(node, event)
    if event.kind == "node.started":
        node.boot = event.boot
    elif isinstance(data, NodeClock):
        node.clock_state = data.state
        if data.offset_s is not None:
            node.clock_offset_s = data.offset_s
    elif isinstance(data, PolicyApplied):
        if node.policy_version is None or data.version >= node.policy_version:
            node.policy_version = data.version
            node.policy_applied_at = event_time(event.ts)
            node.policy_rejected = None
    elif isinstance(data, PolicyRejected):
        node.policy_rejected = data.reason


def _ref(row: dict[str, Any]) -> str:
    return f"{row['node']}:{row['seq']}"


class _Stays:
    """Open stays per (person, door) and the rows to insert / update, applied in bulk."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], dict[str, Any]] = {}
        self.inserts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []

    def tap(self, row: dict[str, Any]) -> None:
        key = (row["person_id"], row["door"])
        current = self.open.get(key)
        if row["direction"] == "in":
            if current is None:
                stay = {
                    "person_id": key[0],
                    "door": key[1],
                    "entered_at": row["ts"],
                    "left_at": None,
                    "enter_ref": _ref(row),
                    "leave_ref": None,
                }
                self.inserts.append(stay)
                self.open[key] = stay
        elif current is not None:
            entered = current["entered_at"]
            current["left_at"] = row["ts"] if entered is None else max(row["ts"], entered)
            current["leave_ref"] = _ref(row)
            if "id" in current:  # a stay already in the database
                self.updates.append(
                    {
                        "sid": current["id"],
                        "left_at": current["left_at"],
                        "leave_ref": current["leave_ref"],
                    }
                )
            del self.open[key]
        else:
            self.inserts.append(
                {
                    "person_id": key[0],
                    "door": key[1],
                    "entered_at": None,
                    "left_at": row["ts"],
                    "enter_ref": None,
                    "leave_ref": _ref(row),
                }
            )

    def write(self, session: Session) -> None:
        conn = session.connection()
        insert_rows(session, Presence.__table__, self.inserts)  # type: ignore[arg-type]
        if self.updates:
            conn.execute(
                update(Presence)
                .where(Presence.id == bindparam("sid"))
                .values(left_at=bindparam("left_at"), leave_ref=bindparam("leave_ref")),
                self.updates,
            )


def store_door_access(
    session: Session, rows: Sequence[dict[str, Any]], late: Iterable[dict[str, Any]] = ()
) -> None:
    """Insert door_access ``rows`` and apply their granted taps to presence: incrementally, in
    time order, except the (person, door) pairs touched by ``late`` rows (a subset of ``rows``
    older than what was stored), which are rebuilt. The open stays are read first, and the taps
    applied to them while the rows stream in (on PostgreSQL the server inserts meanwhile)."""
    rebuild: dict[tuple[str, str], datetime] = {}
    for r in _per_person(late):
        key = (r["person_id"], r["door"])
        rebuild[key] = min(rebuild.get(key, r["ts"]), r["ts"])
    taps = sorted(
        (r for r in _per_person(rows) if (r["person_id"], r["door"]) not in rebuild),
        key=lambda r: r["ts"],
    )
    stays = _Stays()
    if taps:
        session.flush()
        t = Presence.__table__.c
        persons = sorted({r["person_id"] for r in taps})
        for chunk in _chunks(persons, 500):
            for sid, person_id, door, entered_at in session.execute(
                select(t.id, t.person_id, t.door, t.entered_at).where(
                    t.left_at.is_(None), t.person_id.in_(chunk)
                )
            ):
                stays.open[(person_id, door)] = {"id": sid, "entered_at": entered_at}
    # no query inside the block
    with row_writer(session, DoorAccess.__table__) as write:  # type: ignore[arg-type]
        for row in rows:
            write(row)
        for row in taps:
            stays.tap(row)
    stays.write(session)
    for (person_id, door), since in sorted(rebuild.items()):
        rebuild_presence(session, person_id, door, since)


def _per_person(rows: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Granted taps, one per person (a two-person grant moves both people)."""
    for r in rows:
        if not r["granted"]:
            continue
        if r["person_id"]:
            yield r
        if r.get("second_person_id"):
            yield {**r, "person_id": r["second_person_id"]}


def rebuild_presence(session: Session, person_id: str, door: str, since: datetime) -> None:
    """Recompute a pair's intervals from the last entry before ``since`` (the late data)."""
    session.flush()
    pair = and_(Presence.person_id == person_id, Presence.door == door)
    start = session.scalar(
        select(func.max(Presence.entered_at)).where(pair, Presence.entered_at < since)
    )
    if start is None:
        session.execute(delete(Presence).where(pair))
        taps_q = select(DoorAccess)
    else:
        session.execute(
            delete(Presence).where(
                pair,
                or_(
                    Presence.entered_at >= start,
                    and_(Presence.entered_at.is_(None), Presence.left_at >= start),
                ),
            )
        )
        taps_q = select(DoorAccess).where(DoorAccess.ts >= start)
    taps = session.scalars(
        taps_q.where(
            or_(DoorAccess.person_id == person_id, DoorAccess.second_person_id == person_id),
            DoorAccess.door == door,
            DoorAccess.granted.is_(True),
        ).order_by(DoorAccess.ts, DoorAccess.id)
    ).all()
    stays = _Stays()
    for tap in taps:
        stays.tap(
            {
                "person_id": person_id,
                "door": door,
                "direction": tap.direction,
                "ts": tap.ts,
                "node": tap.node,
                "seq": tap.seq,
            }
        )
    stays.write(session)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- read side (used by the web views and reports) ----------------------------------------------


@dataclass(frozen=True)
class AccessFilter:
    since: datetime | None = None
    until: datetime | None = None
    person_id: str | None = None
    door: str | None = None
    granted: bool | None = None
    person_ids: tuple[str, ...] | None = None  # any of these (a search by name)
    doors: tuple[str, ...] | None = None
    site: str | None = None  # only the taps of this site's nodes (a site-scoped account)


def _access_where(flt: AccessFilter) -> list[Any]:
    conds: list[Any] = []
    if flt.site is not None:
        conds.append(DoorAccess.node.in_(select(Node.name).where(Node.site == flt.site)))
    if flt.since is not None:
        conds.append(DoorAccess.ts >= flt.since)
    if flt.until is not None:
        conds.append(DoorAccess.ts < flt.until)
    if flt.person_id is not None:
        conds.append(DoorAccess.person_id == flt.person_id)
    if flt.person_ids is not None:
        conds.append(DoorAccess.person_id.in_(flt.person_ids or ("",)))
    if flt.door is not None:
        conds.append(DoorAccess.door == flt.door)
    if flt.doors is not None:
        conds.append(DoorAccess.door.in_(flt.doors or ("",)))
    if flt.granted is not None:
        conds.append(DoorAccess.granted.is_(flt.granted))
    return conds


def door_log_count(session: Session, flt: AccessFilter, cap: int = 100_000) -> int:
    """How many taps match (counted up to ``cap``: a page says "100,000 or more")."""
    inner = select(DoorAccess.id).where(*_access_where(flt)).limit(cap).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def door_log(
    session: Session, flt: AccessFilter, *, limit: int = 100, before_id: int | None = None
) -> list[DoorAccess]:
    """Newest first; page with ``before_id`` (the smallest id of the previous page)."""
    q = select(DoorAccess).where(*_access_where(flt))
    if before_id is not None:
        q = q.where(DoorAccess.id < before_id)
    return list(
        session.scalars(q.order_by(DoorAccess.ts.desc(), DoorAccess.id.desc()).limit(limit))
    )


def present_now(session: Session, door: str | None = None) -> list[Presence]:
    """Who is inside now (open intervals), longest-present first."""
    q = select(Presence).where(Presence.left_at.is_(None), Presence.entered_at.is_not(None))
    if door is not None:
        q = q.where(Presence.door == door)
    return list(session.scalars(q.order_by(Presence.entered_at)))


def presence_between(
    session: Session, since: datetime, until: datetime, person_id: str | None = None
) -> list[Presence]:
    """Intervals overlapping [since, until)."""
    q = select(Presence).where(
        or_(Presence.entered_at.is_(None), Presence.entered_at < until),
        or_(Presence.left_at.is_(None), Presence.left_at >= since),
    )
    if person_id is not None:
        q = q.where(Presence.person_id == person_id)
    return list(session.scalars(q.order_by(Presence.entered_at)))


def nodes_overview(session: Session) -> list[dict[str, Any]]:
    """Per node: key status, online state, last seen, clock, policy applied vs latest issued."""
    from dashboard.models.policy import PolicyVersion

    latest = session.scalar(select(func.max(PolicyVersion.version)))
    out = []
    for n in session.scalars(select(Node).order_by(Node.name)):
        out.append(
            {
                "name": n.name,
                "key_status": n.key_status,
                "public_key": n.public_key,
                "state": n.state,
                "last_seen_at": n.last_seen_at,
                "last_event_at": n.last_event_at,
                "clock_state": n.clock_state,
                "clock_offset_s": n.clock_offset_s,
                "policy_version": n.policy_version,
                "policy_latest": latest,
                "policy_current": latest is None or n.policy_version == latest,
                "policy_rejected": n.policy_rejected,
                "acked_seq": n.contiguous_seq,
                "max_seq": n.max_seq,
                "gap_since": n.gap_since,
                "events_stored": n.events_stored,
            }
        )
    return out
