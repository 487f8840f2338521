"""Gather the monthly handling report's content for one month and organisation (read-only)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.correlation import sources as S
from dashboard.hosts.queries import system_usage
from dashboard.models.anomalies import Anomaly
from dashboard.models.correlation import Finding
from dashboard.models.events import DoorAccess
from dashboard.models.numlog import NumberAccess
from dashboard.models.people import Person

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MEDIA_ACTIONS = ("check_out", "return", "wipe", "dispose")
LEAK_TAGS = ("[leak]", "[漏えい]", "[漏洩]")


class ReportError(ValueError):
    """The report cannot be made (bad month, bad file)."""


class MediaRecord(BaseModel):
    """One media-ledger action (usb_guard.ledger's audit records, as the dashboard keeps them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    at: datetime
    control_number: str
    action: str
    actor: str
    detail: str = ""


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    m = MONTH_RE.match(month or "")
    if not m:
        raise ReportError(f"month must look like 2026-11, not {month!r}")
    y, mo = int(m.group(1)), int(m.group(2))
    start = datetime(y, mo, 1, tzinfo=zone)
    end = datetime(y + (mo == 12), 1 if mo == 12 else mo + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass
class MonthlyData:
    month: str
    org: str
    since: datetime
    until: datetime
    zone: ZoneInfo
    entries_total: int = 0
    entries_by_person: list[tuple[str, str, int]] = field(default_factory=list)  # id, name, n
    denied_total: int = 0
    accesses: list[tuple[str, str, str, int]] = field(default_factory=list)  # op, action, purpose, n  # noqa: E501
    accesses_total: int = 0
    exports_total: int = 0
    prints: list[tuple[str, str, int, int]] = field(default_factory=list)  # person, printer, n, pages  # noqa: E501
    prints_total: int = 0
    media: dict[str, int] = field(default_factory=dict)
    media_rows: list[MediaRecord] = field(default_factory=list)
    backups: list[tuple[date, str, str]] = field(default_factory=list)  # night, result, detail
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    leak: str = "none"  # none, open (unresolved critical anomalies), occurred
    leak_count: int = 0
    # section 5 (information-system usage): room-PC log-ons and operations on number data,
    # dashboard.hosts.queries.SystemUsage (the report's layout is the reports helper's)
    system_usage: Any = None


def gather(session: Session, month: str, org: str, zone: ZoneInfo,
           media: Sequence[MediaRecord] = ()) -> MonthlyData:
    since, until = month_bounds(month, zone)
    d = MonthlyData(month=month, org=org, since=since, until=until, zone=zone)
    names: dict[str, str] = {pid: name for pid, name in session.execute(select(Person.id, Person.name))}  # noqa: E501
    in_period = (DoorAccess.ts >= since, DoorAccess.ts < until)
    for pid, n in session.execute(
        select(DoorAccess.person_id, func.count()).where(
            *in_period, DoorAccess.granted.is_(True), DoorAccess.direction == "in")
        .group_by(DoorAccess.person_id).order_by(DoorAccess.person_id)):
        d.entries_by_person.append((pid or "?", names.get(pid or "", ""), n))
        d.entries_total += n
    d.denied_total = session.scalar(select(func.count()).select_from(DoorAccess).where(
        *in_period, DoorAccess.granted.is_(False))) or 0
    q = select(NumberAccess.operator, NumberAccess.action, NumberAccess.purpose,
               NumberAccess.category, func.count()).where(
        NumberAccess.ts >= since, NumberAccess.ts < until)
    if org:
        q = q.where(NumberAccess.office == org)
    for op, action, purpose, cat, n in session.execute(
            q.group_by(NumberAccess.operator, NumberAccess.action, NumberAccess.purpose,
                       NumberAccess.category)
            .order_by(NumberAccess.operator, NumberAccess.action, NumberAccess.purpose)):
        d.accesses.append((op, action, purpose, n))
        d.accesses_total += n
        if cat == "export":
            d.exports_total += n
    agg: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for p in S.prints_between(session, since, until):
        slot = agg[(p.person_id or "?", p.printer)]
        slot[0] += 1
        slot[1] += p.pages or 0
    d.prints = [(k[0], k[1], v[0], v[1]) for k, v in sorted(agg.items())]
    d.prints_total = sum(v[0] for v in agg.values())
    d.media_rows = sorted((m for m in media if since <= m.at < until),
                          key=lambda m: (m.at, m.control_number))
    counts = Counter(m.action for m in d.media_rows)
    d.media = {a: counts.get(a, 0) for a in MEDIA_ACTIONS}
    d.backups = _backups(session, since, until, zone)
    d.system_usage = system_usage(session, since, until)
    _anomalies(session, d)
    return d


def _backups(session: Session, since: datetime, until: datetime, zone: ZoneInfo
             ) -> list[tuple[date, str, str]]:
    runs: dict[date, list[tuple[bool, str]]] = defaultdict(list)
    for node, seq, ts, kind, _door, data in S.events(
            session, ("backup.snapshot", "backup.failed"), since, until):
        b = S.backup_in(node, seq, ts, kind, data)
        if b.ok or b.stage == "run":
            runs[ts.astimezone(zone).date()].append((b.ok, b.error or b.ref))
    out = []
    day = since.astimezone(zone).date()
    last = (until - timedelta(microseconds=1)).astimezone(zone).date()
    while day <= last:
        got = runs.get(day, [])
        if any(ok for ok, _ in got):
            out.append((day, "ok", ""))
        elif got:
            out.append((day, "failed", ", ".join(sorted({e for _, e in got}))[:80]))
        else:
            out.append((day, "missing", ""))
        day += timedelta(days=1)
    return out


def _anomalies(session: Session, d: MonthlyData) -> None:
    """Anomalies of the period: a correlation finding's anomaly belongs to the month of what
    happened (the finding's time), any other anomaly to the month it was first seen."""
    when: dict[int, datetime] = {}
    outside: set[int] = set()
    for aid, at in session.execute(select(Finding.anomaly_id, Finding.at).where(
            Finding.anomaly_id.is_not(None))):
        if aid is None:
            continue
        if d.since <= at < d.until:
            when[aid] = at
        else:
            outside.add(aid)
    found = list(session.scalars(select(Anomaly).where(Anomaly.id.in_(list(when))))) if when \
        else []
    found += [a for a in session.scalars(select(Anomaly).where(
        Anomaly.first_seen_at >= d.since, Anomaly.first_seen_at < d.until))
        if a.id not in outside and a.id not in when]
    rows = sorted(found, key=lambda a: (when.get(a.id, a.first_seen_at), a.id))
    occurred = open_critical = 0
    for a in rows:
        reason = a.reason or ""
        if any(tag in reason.lower() for tag in LEAK_TAGS):
            occurred += 1
        if a.severity == "critical" and a.state == "open":
            open_critical += 1
        d.anomalies.append({"id": a.id, "at": when.get(a.id, a.first_seen_at), "kind": a.kind,
                            "severity": a.severity, "subject": a.subject, "state": a.state,
                            "count": a.count, "by": a.acknowledged_by or "", "reason": reason})
    if occurred:
        d.leak, d.leak_count = "occurred", occurred
    elif open_critical:
        d.leak, d.leak_count = "open", open_critical
