"""An item's evidence inline: the minutes around it for its person and place (stays in the
room, door taps, number accesses, prints, USB), the triggering record marked, and the item's
history from the audit log. The same strip draws a person's day (``dashboard.review.day``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dashboard.hosts.queries import pc_timeline
from dashboard.models.anomalies import Anomaly
from dashboard.models.audit import AuditRecord
from dashboard.models.correlation import Finding
from dashboard.models.events import DoorAccess, Presence, StoredEvent
from dashboard.models.numlog import NumberAccess, OperatorMap

WINDOW = timedelta(minutes=45)
LIMIT = 400


@dataclass(frozen=True)
class Mark:
    ts: datetime
    source: str  # door, access, print, usb, pc, event
    ref: str
    person_id: str | None = None
    door: str | None = None
    direction: str | None = None
    granted: bool | None = None
    reason: str | None = None
    action: str = ""
    purpose: str = ""
    result: str = ""
    ok: bool = True
    printer: str = ""
    pages: object = None
    host: str = ""
    verdict: str = ""
    control_number: str = ""
    kind: str = ""
    node: str = ""


@dataclass(frozen=True)
class Stay:
    start: datetime | None
    end: datetime | None
    door: str
    person_id: str


@dataclass
class Strip:
    since: datetime
    until: datetime
    marks: list[Mark] = field(default_factory=list)
    stays: list[Stay] = field(default_factory=list)
    trigger: set[str] = field(default_factory=set)

    def x(self, ts: datetime | None, width: int = 1000) -> int:
        """Horizontal position of ``ts`` on a strip ``width`` wide (clipped to the window)."""
        if ts is None:
            return 0
        span = (self.until - self.since).total_seconds() or 1
        pos = (ts - self.since).total_seconds() / span
        return int(max(0.0, min(1.0, pos)) * width)


def hosts_of(db: Session, person_id: str) -> set[str]:
    found = {h for (h,) in db.execute(select(OperatorMap.host).where(
        OperatorMap.person_id == person_id, OperatorMap.host.is_not(None))) if h}
    found |= {h for (h,) in db.execute(select(NumberAccess.host).where(
        NumberAccess.person_id == person_id, NumberAccess.host.is_not(None)).distinct()
        .limit(20)) if h}
    return found


def strip(db: Session, since: datetime, until: datetime, *, person_id: str | None = None,
          door: str | None = None, host: str | None = None, node: str | None = None) -> Strip:
    """Everything in [since, until) about ``person_id`` (and ``door``, ``host``, ``node``)."""
    s = Strip(since, until)
    who = [DoorAccess.person_id == person_id, DoorAccess.second_person_id == person_id] \
        if person_id else []
    if door:
        who.append(DoorAccess.door == door)
    if who:
        for d in db.scalars(select(DoorAccess).where(
                or_(*who), DoorAccess.ts >= since, DoorAccess.ts < until)
                .order_by(DoorAccess.ts).limit(LIMIT)):
            s.marks.append(Mark(d.ts, "door", f"{d.node}:{d.seq}", person_id=d.person_id,
                                door=d.door, direction=d.direction, granted=d.granted,
                                reason=d.reason))
        stays = select(Presence).where(
            or_(Presence.left_at.is_(None), Presence.left_at >= since),
            or_(Presence.entered_at.is_(None), Presence.entered_at < until))
        stays = stays.where(Presence.person_id == person_id) if person_id else \
            stays.where(Presence.door == door)
        for p in db.scalars(stays.order_by(Presence.entered_at).limit(LIMIT)):
            s.stays.append(Stay(p.entered_at, p.left_at, p.door, p.person_id))
    hosts = ({host} if host else set()) | (hosts_of(db, person_id) if person_id else set())
    if person_id:
        for r in db.scalars(select(NumberAccess).where(
                NumberAccess.person_id == person_id, NumberAccess.ts >= since,
                NumberAccess.ts < until).order_by(NumberAccess.ts).limit(LIMIT)):
            s.marks.append(Mark(r.ts, "access", r.row_key, person_id=r.person_id,
                                action=r.action, purpose=r.purpose, result=r.result, ok=r.ok,
                                host=r.host or ""))
    if person_id:  # their room-PC records (log-ons, locks, sessions, sudo, files)
        for e in pc_timeline(db, person_id, since, until)[:LIMIT]:
            d = e.data
            hosts.add(d.host)  # and USB on the PCs they used
            s.marks.append(Mark(e.ts, "pc", e.ref, person_id=person_id, host=d.host,
                                kind=e.kind, granted=getattr(d, "granted", None),
                                reason=getattr(d, "reason", None), node=e.node))
    kinds = ["print.release", "usb.inserted"]
    for e in db.scalars(select(StoredEvent).where(
            StoredEvent.kind.in_(kinds), StoredEvent.ts >= since, StoredEvent.ts < until)
            .order_by(StoredEvent.ts).limit(LIMIT * 4)):
        data = e.data if isinstance(e.data, dict) else {}
        ref = f"{e.node}:{e.seq}"
        if e.kind == "print.release" and person_id and data.get("person_id") == person_id:
            s.marks.append(Mark(e.ts, "print", ref, person_id=person_id,
                                printer=str(data.get("printer", "")), pages=data.get("pages")))
        elif e.kind == "usb.inserted" and data.get("host") in hosts:
            s.marks.append(Mark(e.ts, "usb", ref, host=str(data.get("host")),
                                verdict=str(data.get("verdict", "")),
                                control_number=str(data.get("control_number") or "")))
    if node:
        for e in db.scalars(select(StoredEvent).where(
                StoredEvent.node == node, StoredEvent.ts >= since, StoredEvent.ts < until)
                .order_by(StoredEvent.ts).limit(50)):
            if e.kind not in kinds and e.kind != "door.access":
                s.marks.append(Mark(e.ts, "event", f"{e.node}:{e.seq}", kind=e.kind,
                                    node=e.node, door=e.door))
    s.marks.sort(key=lambda m: (m.ts, m.source, m.ref))
    return s


def item_strip(db: Session, a: Anomaly, finding: Finding | None) -> Strip | None:
    """The minutes around an item for its person and place; None for items with no time."""
    at = a.at or a.first_seen_at
    ev = finding.evidence if finding is not None else {}
    door = a.place or (ev.get("door") if isinstance(ev.get("door"), str) else None)
    s = strip(db, at - WINDOW, at + WINDOW, person_id=a.person_id, door=door, host=a.host,
              node=a.node if not (a.person_id or door) else None)
    for k in ("row", "print", "event"):
        if isinstance(ev.get(k), str):
            s.trigger.add(ev[k])
    for ref in ev.get("usb", []) or []:
        s.trigger.add(str(ref))
    if not s.trigger:  # no finding: the records at the item's own time
        s.trigger = {m.ref for m in s.marks if abs((m.ts - at).total_seconds()) < 1}
    return s


@dataclass(frozen=True)
class Step:
    at: datetime
    actor: str
    action: str
    reason: str
    assignee: str | None


def history(db: Session, anomaly_id: int) -> list[Step]:
    """Who acknowledged, resolved, assigned or escalated the item, with what reason."""
    out = []
    for r in db.scalars(select(AuditRecord).where(
            AuditRecord.target_type == "anomaly", AuditRecord.target_id == str(anomaly_id))
            .order_by(AuditRecord.seq)):
        after = r.after if isinstance(r.after, dict) else {}
        out.append(Step(r.at, r.actor, r.action.removeprefix("anomaly."),
                        str(after.get("note") or after.get("reason") or ""),
                        after.get("assignee") if r.action == "anomaly.assign" else None))
    return out
