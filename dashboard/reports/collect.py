"""The physical and operational listings of a month (dashboard.reports.data.gather): entries and
exits, prints linked to number accesses, media carried out, deletion certificates, backup
nights and verifies, and the review items with their resolution.

For one client only what concerns that client: the entries, prints and media of the people who
used its numbers (prints only when they followed an access to its numbers), review items tied to
its rows or to those people, and the office-wide ones (doors, backups, logs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.correlation import sources as S
from dashboard.correlation.settings import CorrelationSettings
from dashboard.models.anomalies import Anomaly
from dashboard.models.correlation import DeletionCertificate, Finding
from dashboard.models.events import DoorAccess, StoredEvent
from dashboard.models.media import MediumRecord
from dashboard.models.reports import IncidentClassification
from dashboard.reports.data import (
    MEDIA_ACTIONS,
    DeletionRow,
    EntryRow,
    MediaRow,
    MonthData,
    Night,
    PcRow,
    PrintRow,
    ReviewRow,
    UseRow,
    VerifyRow,
    client_of,
    month_bounds,
    number_rows,
)
from dashboard.reports.names import Names

ROW_EVIDENCE = ("row", "rows", "failures")
SYSTEM_ACTORS = frozenset({"correlation", "ingest", "system"})  # resolved by the dashboard


def entries(session: Session, d: MonthData, names: Names, everyone: bool) -> list[EntryRow]:
    q = select(DoorAccess).where(DoorAccess.ts >= d.since, DoorAccess.ts < d.until)
    if not everyone:
        if not d.handler_ids:
            return []
        q = q.where(DoorAccess.person_id.in_(sorted(d.handler_ids)))
    return [EntryRow(ts=a.ts, person=names.person(a.person_id), door=names.door(a.door),
                     direction=a.direction, granted=a.granted, reason=a.reason)
            for a in session.scalars(q.order_by(DoorAccess.ts, DoorAccess.id))]


def prints(session: Session, d: MonthData, names: Names, rows: Sequence[UseRow],
           everyone: bool) -> list[PrintRow]:
    """Print releases; for one client those that followed (within the correlation's print
    window) an access by the same person whose last such access was to this client's numbers."""
    window = timedelta(seconds=CorrelationSettings().print_window_s)
    earlier = number_rows(session, d.since - window, d.since, names)
    by_person: dict[str, list[UseRow]] = defaultdict(list)
    for r in [*earlier, *rows]:
        if r.person_id and r.ok and r.category != "login":
            by_person[r.person_id].append(r)
    client_id = d.client.id if d.client is not None else None
    out = []
    for p in S.prints_between(session, d.since, d.until):
        before = [r for r in by_person.get(p.person_id or "", ())
                  if p.ts - window <= r.ts <= p.ts]
        last = before[-1] if before else None
        if not everyone and (last is None or last.client_id != client_id):
            continue
        out.append(PrintRow(ts=p.ts, person=names.person(p.person_id), printer=names.printer(
            p.printer), pages=p.pages, after=last.ts if last else None))
    return out


def media(session: Session, d: MonthData, names: Names, everyone: bool) -> list[MediaRow]:
    """Check-outs, returns, wipes and disposals; for one client those of media its handlers
    held (a return, wipe or disposal follows the medium's last holder)."""
    holder: dict[str, str | None] = {}
    out = []
    for r in session.scalars(select(MediumRecord).where(MediumRecord.at < d.until)
                             .order_by(MediumRecord.at, MediumRecord.id)):
        if r.action == "check_out":
            holder[r.control_number] = r.holder
        who = r.holder or holder.get(r.control_number)
        if r.at < d.since or r.action not in MEDIA_ACTIONS:
            continue
        if not everyone and who not in d.handler_ids:
            continue
        person = names.person(who) if r.action in ("check_out", "return") else names.user(
            r.actor)
        out.append(MediaRow(ts=r.at, control_number=r.control_number, action=r.action,
                            person=person, purpose=r.purpose or ""))
    return out


def deletions(session: Session, d: MonthData) -> list[DeletionRow]:
    """Deletion certificates issued in the month (a deletion is reported in the report that
    follows its certificate)."""
    q = select(DeletionCertificate).where(DeletionCertificate.issued_at >= d.since,
                                          DeletionCertificate.issued_at < d.until)
    if d.client is not None:
        q = q.where(DeletionCertificate.client_id == d.client.id)
    return [DeletionRow(number=c.number, processed_on=c.processed_on, method=c.method,
                        subject=c.subject, result=c.result, issued_at=c.issued_at)
            for c in session.scalars(q.order_by(DeletionCertificate.issued_at,
                                                 DeletionCertificate.id))]


def first_night(session: Session, zone: Any) -> date | None:
    """The first night the system existed: its first backup run, or the night after its first
    recorded event (a run at 02:00 on the day the system was set up did not exist)."""
    first_backup = session.scalar(select(func.min(StoredEvent.ts)).where(
        StoredEvent.kind.in_(S.BACKUP_KINDS)))
    first_event = session.scalar(select(func.min(StoredEvent.ts)))
    days = []
    if first_backup is not None:
        days.append(S.as_utc(first_backup).astimezone(zone).date())
    if first_event is not None:
        days.append(S.as_utc(first_event).astimezone(zone).date() + timedelta(days=1))
    return min(days) if days else None


def nights(session: Session, d: MonthData, now: datetime) -> tuple[date | None, list[Night]]:
    """One night per local date from the first night the system existed to the last elapsed
    one of the month: ok (a snapshot), failed (only failed runs) or missing."""
    runs: dict[date, list[tuple[bool, str]]] = defaultdict(list)
    for node, seq, ts, kind, _door, data in S.events(session, S.BACKUP_KINDS, d.since,
                                                       d.until):
        b = S.backup_in(node, seq, ts, kind, data)
        if b.ok or b.stage == "run":
            runs[ts.astimezone(d.zone).date()].append((b.ok, b.error))
    start = first_night(session, d.zone)
    day = d.since.astimezone(d.zone).date()
    last = (d.until - timedelta(microseconds=1)).astimezone(d.zone).date()
    today = now.astimezone(d.zone).date()
    if start is None:
        return None, []
    day = max(day, start)
    out = []
    while day <= last and (day < today or (day == today and runs.get(day))):
        got = runs.get(day, [])
        if any(ok for ok, _ in got):
            out.append(Night(day, "ok"))
        elif got:
            out.append(Night(day, "failed", ", ".join(sorted({e for _, e in got if e}))))
        else:
            out.append(Night(day, "missing"))
        day += timedelta(days=1)
    return start, out


def verifies(session: Session, d: MonthData) -> list[VerifyRow]:
    out = []
    for _node, _seq, ts, _kind, _door, data in S.events(session, ("backup.verified",),
                                                         d.since, d.until):
        out.append(VerifyRow(ts=ts, mode=str(data.get("mode", "")),
                             ok=data.get("result") == "ok"))
    return out


def _anomalies_of(session: Session, d: MonthData) -> tuple[list[Anomaly], dict[int, Finding]]:
    """A correlation finding's anomaly belongs to the month of what happened (the finding's
    time), any other anomaly to the month it was first seen."""
    findings: dict[int, Finding] = {}
    outside: set[int] = set()
    for f in session.scalars(select(Finding).where(Finding.anomaly_id.is_not(None))):
        assert f.anomaly_id is not None
        if d.since <= f.at < d.until:
            findings[f.anomaly_id] = f
        else:
            outside.add(f.anomaly_id)
    found = list(session.scalars(select(Anomaly).where(Anomaly.id.in_(list(findings))))) \
        if findings else []
    found += [a for a in session.scalars(select(Anomaly).where(
        Anomaly.first_seen_at >= d.since, Anomaly.first_seen_at < d.until))
        if a.id not in outside and a.id not in findings]
    return found, findings


def _row_keys(evidence: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    for k in ROW_EVIDENCE:
        v = evidence.get(k)
        if isinstance(v, str):
            keys.add(v)
        elif isinstance(v, list):
            keys.update(str(x) for x in v)
    return keys


def _subject(a: Anomaly, f: Finding | None, names: Names) -> tuple[str, ...]:
    ev: dict[str, Any] = (f.evidence if f is not None else a.detail) or {}
    person = f.person_id if f is not None else ev.get("holder")
    parts = [names.person(person) if person else ""]
    if ev.get("door"):
        parts.append(names.door(str(ev["door"])))
    elif f is not None and f.node:
        parts.append(names.node_name(f.node))
    elif f is None and a.node:
        parts.append(names.node_name(a.node))
    if ev.get("control_number"):
        parts.append(str(ev["control_number"]))
    if ev.get("host"):
        parts.append(names.host_name(str(ev["host"])))
    if ev.get("node") and not (f is not None and f.node):
        parts.append(names.node_name(str(ev["node"])))
    return tuple(dict.fromkeys(p for p in parts if p))


def reviews(session: Session, d: MonthData, names: Names, rows: Sequence[UseRow],
            everyone: bool) -> list[ReviewRow]:
    found, findings = _anomalies_of(session, d)
    all_keys = {r.row_key for r in rows}
    classes = {c.anomaly_id: c for c in session.scalars(select(IncidentClassification).where(
        IncidentClassification.anomaly_id.in_([a.id for a in found])))} if found else {}
    out = []
    for a in found:
        f = findings.get(a.id)
        ev = (f.evidence if f is not None else {}) or {}
        keys = _row_keys(ev)
        if not everyone:
            if keys:
                if not keys & d.row_keys and keys & all_keys:
                    continue  # about another client's rows
            elif f is not None and f.person_id and f.person_id not in d.handler_ids:
                continue  # about someone who did not handle this client's numbers
        c = classes.get(a.id)
        out.append(ReviewRow(
            anomaly_id=a.id, at=f.at if f is not None else a.first_seen_at, kind=a.kind,
            severity=a.severity, subject=_subject(a, f, names), state=a.state,
            by="" if a.acknowledged_by in SYSTEM_ACTORS else names.user(a.acknowledged_by),
            reason=a.reason or "",
            incident=None if c is None else c.incident))
    return sorted(out, key=lambda r: (r.at, r.anomaly_id))


def gather(session: Session, month: str, client_id: int | None, zone: ZoneInfo,
           now: datetime) -> MonthData:
    """The month's listings for ``client_id`` (None: every client, the internal report)."""
    since, until = month_bounds(month, zone)
    d = MonthData(month=month, client=client_of(session, client_id), since=since, until=until,
                  zone=zone)
    names = Names(session)
    rows = number_rows(session, since, until, names)
    mine = [r for r in rows if client_id is None or r.client_id == client_id]
    d.uses = [r for r in mine if r.category != "login"]
    d.logins = [r for r in mine if r.category == "login"]
    d.row_keys = {r.row_key for r in mine}
    d.handler_ids = {r.person_id for r in d.uses if r.person_id}
    d.handlers = sorted({names.person(p) for p in d.handler_ids})
    everyone = client_id is None
    d.entries = entries(session, d, names, everyone)
    d.prints = prints(session, d, names, rows, everyone)
    d.media = media(session, d, names, everyone)
    d.deletions = deletions(session, d)
    d.first_night, d.nights = nights(session, d, now)
    d.verifies = verifies(session, d)
    d.reviews = reviews(session, d, names, rows, everyone)
    d.pcs = pcs(session, d, names, everyone)
    return d


def pcs(session: Session, d: MonthData, names: Names, everyone: bool) -> list[PcRow]:
    """Log-ons at the room's PCs and operations on the folders that hold individual numbers
    (the host agents' records); for one client those of the staff who handled its numbers."""
    from controller.host import events as H
    from dashboard.hosts.queries import NUMBER_CLASSES, load

    out: list[PcRow] = []
    for ev in load(session, (H.KIND_LOGON, H.KIND_FILE_ACCESS), d.since, d.until).events:
        m = ev.data
        person = getattr(m, "person_id", None)
        if not everyone and person not in d.handler_ids:
            continue
        who, host = names.person(person) if person else "", names.host(m.host)
        if ev.kind == H.KIND_LOGON:
            out.append(PcRow(ev.ts, who, host, "logon", m.granted, m.reason or ""))
        elif m.path_class in NUMBER_CLASSES:
            out.append(PcRow(ev.ts, who, host, "file_op", m.success, m.op, m.count))
    return out
