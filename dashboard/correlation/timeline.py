"""A person's timeline: door taps, print releases, USB events on their hosts, their number
accesses and their room-PC records (log-ons, locks, sessions, sudo, file operations), in time
order (read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dashboard.correlation import sources as S
from dashboard.hosts.queries import pc_sessions, pc_timeline
from dashboard.models.events import DoorAccess
from dashboard.models.numlog import NumberAccess, OperatorMap


@dataclass(frozen=True)
class Item:
    ts: datetime
    kind: str  # door, print, usb, access, pc
    ref: str
    text: str


def timeline(session: Session, person_id: str, since: datetime, until: datetime,
             limit: int = 2000) -> list[Item]:
    items: list[Item] = []
    for d in session.scalars(select(DoorAccess).where(
            or_(DoorAccess.person_id == person_id, DoorAccess.second_person_id == person_id),
            DoorAccess.ts >= since, DoorAccess.ts < until).order_by(DoorAccess.ts).limit(limit)):
        verdict = "granted" if d.granted else f"denied ({d.reason})"
        items.append(Item(d.ts, "door", f"{d.node}:{d.seq}", f"{d.door} {d.direction} {verdict}"))
    hosts: set[str] = set()
    for r in session.scalars(select(NumberAccess).where(
            NumberAccess.person_id == person_id, NumberAccess.ts >= since,
            NumberAccess.ts < until).order_by(NumberAccess.ts).limit(limit)):
        if r.host:
            hosts.add(r.host)
        items.append(Item(r.ts, "access", f"{r.source}#{r.no}@L{r.line}",
                          f"{r.action} / {r.purpose or '-'} / {r.result} ({r.operator})"))
    hosts.update(h for (h,) in session.execute(select(OperatorMap.host).where(
        OperatorMap.person_id == person_id, OperatorMap.host.is_not(None))) if h)
    for e in pc_timeline(session, person_id, since, until):
        d = e.data
        what = getattr(d, "reason", None) or getattr(d, "action", None) or getattr(d, "op", "")
        verdict = "" if getattr(d, "granted", True) else " denied"
        items.append(Item(e.ts, "pc", e.ref, f"{d.host} {e.kind}{verdict} {what}".strip()))
    hosts.update(s.host for s in pc_sessions(session, since, until, person_id=person_id))
    for p in S.prints_between(session, since, until):
        if p.person_id == person_id:
            items.append(Item(p.ts, "print", p.ref, f"{p.printer}, {p.pages or '?'} pages"))
    for u in S.usb_between(session, since, until):
        if u.host in hosts:
            items.append(Item(u.ts, "usb", u.ref, f"{u.host} {u.verdict} "
                              f"{u.control_number or u.vendor_product}"))
    items.sort(key=lambda i: (i.ts, i.kind, i.ref))
    return items[:limit]
