"""Read the rules' typed inputs from the database (events, presence, imported rows)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from dashboard.correlation.types import (
    AccessIn,
    BackupIn,
    DoorIncidentIn,
    Interval,
    LoanIn,
    LogIssueIn,
    PrintIn,
    UsbIn,
)
from dashboard.models.anomalies import Anomaly
from dashboard.models.events import Presence, StoredEvent
from dashboard.models.media import MediumRecord
from dashboard.models.nodes import Node
from dashboard.models.numlog import NumberAccess

USB_KIND, PRINT_KIND = "usb.inserted", "print.release"
DOOR_KINDS = ("door.forced", "door.held_open")
BACKUP_KINDS = ("backup.snapshot", "backup.failed")


def as_utc(value: Any) -> datetime:
    """A timestamp from a raw row: SQLite gives text (naive UTC), PostgreSQL an aware datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_list(value: Any) -> tuple[str, ...]:
    if not value or value == "[]":
        return ()
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(str(v) for v in value)


def access_in(r: NumberAccess) -> AccessIn:
    return AccessIn(key=r.row_key, ts=r.ts, source=r.source, line=r.line, no=r.no,
                    operator=r.operator, person_id=r.person_id, host=r.host,
                    category=r.category, ok=r.ok, purpose=r.purpose, action=r.action,
                    redacted_fields=tuple(r.redacted_fields or ()))


def ref(node: str, seq: int) -> str:
    return f"{node}:{seq}"


def usb_in(node: str, seq: int, ts: datetime, d: dict[str, Any]) -> UsbIn | None:
    host = d.get("host")
    if not isinstance(host, str):
        return None
    ifaces = d.get("interfaces") or ()
    cn = d.get("control_number") if isinstance(d.get("control_number"), str) else None
    storage = cn is not None or any(str(i).startswith("08") for i in ifaces)
    vp = f"{d.get('vendor_id') or '?'}:{d.get('product_id') or '?'}"
    return UsbIn(ref=ref(node, seq), ts=ts, host=host, verdict=str(d.get("verdict", "")),
                 storage=storage, control_number=cn, device=str(d.get("device", "")),
                 vendor_product=vp)


def print_in(node: str, seq: int, ts: datetime, d: dict[str, Any]) -> PrintIn:
    pages = d.get("pages")
    person = d.get("person_id") if isinstance(d.get("person_id"), str) else None
    return PrintIn(ref=ref(node, seq), ts=ts, person_id=person, printer=str(d.get("printer", "")),
                   pages=pages if isinstance(pages, int) else None)


def door_in(node: str, seq: int, ts: datetime, kind: str, door: str | None,
            d: dict[str, Any]) -> DoorIncidentIn:
    return DoorIncidentIn(ref=ref(node, seq), ts=ts, kind=kind,
                          door=door or str(d.get("door", "?")), node=node)


def backup_in(node: str, seq: int, ts: datetime, kind: str, d: dict[str, Any]) -> BackupIn:
    ok = kind == "backup.snapshot" and d.get("result", "ok") == "ok"
    return BackupIn(ref=ref(node, seq), ts=ts, ok=ok, node=node,
                    stage=str(d.get("stage", "run")), error=str(d.get("error", ""))[:64])


_E = StoredEvent.__table__.c
_P = Presence.__table__.c
_N = NumberAccess.__table__.c

# Built once: the per-event path runs these point queries for every row and event (no statement
# building, the compiled form cached), through Core columns (no ORM entities).
_EVENTS = (select(_E.node, _E.seq, _E.ts, _E.kind, _E.door, _E.data)
           .where(_E.kind == bindparam("kind"), _E.ts >= bindparam("since"),
                  _E.ts < bindparam("until"))
           .order_by(_E.ts, _E.node, _E.seq))
_PRESENCE_OF = (select(_P.entered_at, _P.left_at, _P.door, _P.enter_ref)
                .where(_P.person_id == bindparam("person"), _P.entered_at <= bindparam("until"))
                .order_by(_P.entered_at.desc()).limit(8))
_ACCESS_COLS = (_N.row_key, _N.ts, _N.source, _N.line, _N.no, _N.operator, _N.person_id, _N.host,
                _N.category, _N.ok, _N.purpose, _N.action, _N.redacted_fields)
_ACCESSES: dict[tuple[str, ...], Select[Any]] = {}


def _accesses_stmt(by: tuple[str, ...]) -> Select[Any]:
    """Rows in [since, until] (ordered by ts, id) whose columns ``by`` equal their parameters."""
    stmt = _ACCESSES.get(by)
    if stmt is None:
        q = select(*_ACCESS_COLS).where(_N.ts >= bindparam("since"), _N.ts <= bindparam("until"))
        for col in by:
            q = q.where(_N[col] == bindparam(col))
        stmt = _ACCESSES[by] = q.order_by(_N.ts, _N.id)
    return stmt


def events(session: Session, kinds: Iterable[str], since: datetime, until: datetime
           ) -> Iterator[tuple[str, int, datetime, str, str | None, dict[str, Any]]]:
    """The events of ``kinds`` in [since, until), by time, node, seq. One query per kind, each
    an equality on the (kind, ts) index: with ``kind IN (...)`` SQLite's planner (no histograms:
    a kind looks as common as the average) scans the whole period by ts instead."""
    got: list[tuple[str, int, datetime, str, str | None, dict[str, Any]]] = []
    names = sorted(set(kinds))
    for k in names:
        got.extend((node, seq, ts, kind, door, data if isinstance(data, dict) else {})
                   for node, seq, ts, kind, door, data in session.execute(
                       _EVENTS, {"kind": k, "since": since, "until": until}))
    if len(names) > 1:
        got.sort(key=lambda e: (e[2], e[0], e[1]))
    yield from got


def usb_between(session: Session, since: datetime, until: datetime) -> list[UsbIn]:
    out = []
    for node, seq, ts, _k, _door, d in events(session, (USB_KIND,), since, until):
        u = usb_in(node, seq, ts, d)
        if u is not None:
            out.append(u)
    return out


def prints_between(session: Session, since: datetime, until: datetime) -> list[PrintIn]:
    return [print_in(n, s, ts, d) for n, s, ts, _k, _door, d in
            events(session, (PRINT_KIND,), since, until)]


def doors_between(session: Session, since: datetime, until: datetime) -> list[DoorIncidentIn]:
    return [door_in(n, s, ts, k, door, d) for n, s, ts, k, door, d in
            events(session, DOOR_KINDS, since, until)]


def backups_between(session: Session, since: datetime, until: datetime) -> list[BackupIn]:
    return [backup_in(n, s, ts, k, d) for n, s, ts, k, _door, d in
            events(session, BACKUP_KINDS, since, until)]


def presence_of(session: Session, person_id: str, since: datetime, until: datetime
                ) -> list[Interval]:
    """The person's latest intervals entered by ``until`` (those that may cover [since, until],
    and the last one that ended before): one index range scan, newest first, bounded."""
    rows = session.execute(_PRESENCE_OF, {"person": person_id, "until": until}).all()
    ivs = [Interval(a, b, door, r or "") for a, b, door, r in reversed(rows)]
    keep = [iv for iv in ivs if iv.end is None or iv.end >= since]
    ended = [iv for iv in ivs if iv.end is not None and iv.end < since]
    return ended[-1:] + keep


def present_at(session: Session, door: str, ts: datetime) -> list[str]:
    rows = session.scalars(
        select(Presence.person_id).where(
            Presence.door == door, Presence.entered_at <= ts,
            or_(Presence.left_at.is_(None), Presence.left_at >= ts))
    ).all()
    return sorted(set(rows))


def accesses_between(session: Session, since: datetime, until: datetime, *,
                     person_id: str | None = None, operator: str | None = None,
                     host: str | None = None) -> list[AccessIn]:
    params: dict[str, Any] = {"since": since, "until": until}
    params.update((k, v) for k, v in (("person_id", person_id), ("operator", operator),
                                      ("host", host)) if v is not None)
    by = tuple(k for k in ("person_id", "operator", "host") if k in params)
    return [AccessIn(key=k, ts=ts, source=src, line=line, no=no, operator=op, person_id=pid,
                     host=h, category=cat, ok=bool(ok), purpose=pur, action=act,
                     redacted_fields=as_list(red))
            for k, ts, src, line, no, op, pid, h, cat, ok, pur, act, red
            in session.execute(_accesses_stmt(by), params)]


def log_issues(session: Session, since: datetime, until: datetime) -> list[LogIssueIn]:
    """Gaps in each node's seq over the period, and the links the ingest found broken.

    Per node, the period's seq range is found by a binary search on (node, seq) (ts follows
    seq on a node); a range within the node's contiguous prefix (every seq stored, as the ingest
    keeps it) has no gap, any other is counted on the same index: no scan of the events table
    by time. Broken
    links are the ingest's ``chain`` anomalies (raised exactly when it stores chain_ok false),
    joined back to their event for its time.
    """
    out: list[LogIssueIn] = []
    for name, max_seq, contiguous in session.execute(
            select(Node.name, Node.max_seq, Node.contiguous_seq).order_by(Node.name)):
        lo = _first_seq_at(session, name, since, max_seq)
        hi = _first_seq_at(session, name, until, max_seq) - 1
        if lo is None or hi < lo or hi <= (contiguous or 0):
            continue  # the ingest stored every seq up to ``contiguous``: no gap to count
        count = session.scalar(select(func.count()).select_from(StoredEvent).where(
            StoredEvent.node == name, StoredEvent.seq.between(lo, hi)))
        if count != hi - lo + 1:
            out.extend(_gaps(session, name, lo, hi))
    for a in session.scalars(select(Anomaly).where(Anomaly.kind == "chain")):
        seq = (a.detail or {}).get("seq")
        if not isinstance(seq, int) or a.node is None:
            continue
        for node, sq, ts, ok in session.execute(
                select(StoredEvent.node, StoredEvent.seq, StoredEvent.ts, StoredEvent.chain_ok)
                .where(StoredEvent.node == a.node, StoredEvent.seq == seq)):
            if not ok and since <= ts < until:
                out.append(LogIssueIn(node=node, kind="chain", ts=ts, first=sq, last=sq))
    return out


def _gaps(session: Session, node: str, lo: int, hi: int) -> list[LogIssueIn]:
    out = []
    prev_seq, prev_ts = None, None
    q = (select(StoredEvent.seq, StoredEvent.ts)
         .where(and_(StoredEvent.node == node, StoredEvent.seq.between(lo, hi)))
         .order_by(StoredEvent.seq))
    for seq, ts in session.execute(q):
        if prev_seq is not None and seq != prev_seq + 1:
            out.append(LogIssueIn(node=node, kind="gap", ts=prev_ts or ts,
                                  first=prev_seq + 1, last=seq - 1))
        prev_seq, prev_ts = seq, ts
    return out


def _first_seq_at(session: Session, node: str, when: datetime, max_seq: int) -> int:
    """The smallest stored seq of ``node`` whose event is at or after ``when`` (max_seq + 1 if
    none), by binary search over seq."""
    lo, hi = 1, max_seq + 1
    while lo < hi:
        mid = (lo + hi) // 2
        row = session.execute(
            select(StoredEvent.seq, StoredEvent.ts).where(
                StoredEvent.node == node, StoredEvent.seq >= mid)
            .order_by(StoredEvent.seq).limit(1)).first()
        if row is None or row[1] >= when:
            hi = mid
        else:
            lo = row[0] + 1
    return lo


def grace(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)


def loans(session: Session) -> list[LoanIn]:
    """Every check-out with its due time and, once returned (or otherwise ended), when."""
    out: list[LoanIn] = []
    open_: dict[str, MediumRecord] = {}
    for r in session.scalars(select(MediumRecord).order_by(MediumRecord.control_number,
                                                           MediumRecord.at, MediumRecord.id)):
        if r.action == "check_out" and r.due_back is not None:
            open_[r.control_number] = r
        elif r.control_number in open_ and r.action in ("return", "found", "mark_lost"):
            c = open_.pop(r.control_number)
            assert c.due_back is not None
            ended = r.at if r.action != "mark_lost" else None  # a lost medium stays overdue
            out.append(LoanIn(c.control_number, c.holder or "?", c.due_back, ended))
    out += [LoanIn(c.control_number, c.holder or "?", c.due_back, None)  # type: ignore[arg-type]
            for c in open_.values()]
    return out
