"""The full re-run over a period: set-based reads and sorted merges, no per-row queries.

Number-access rows stream ordered by (person, ts, line, key) and presence intervals by
(person, entered_at); a sweep per person finds the intervals around each row. USB events,
prints, backups and door incidents of the period are few and are held in memory, indexed by host
or person. Every row goes through ``evaluate.access_findings``, the same rule bundle the
incremental path uses, so both give the same dedupe keys. Findings of the period that the data
no longer supports are marked withdrawn.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from dashboard.correlation import rules as R
from dashboard.correlation import sources as S
from dashboard.correlation.engine import Correlator
from dashboard.correlation.evaluate import access_findings, print_outcome
from dashboard.correlation.settings import CorrelationSettings
from dashboard.correlation.store import PersistResult, persist
from dashboard.correlation.types import AccessIn, FindingOut, Interval, LoanIn, Outcome, UsbIn
from dashboard.models.correlation import Finding
from dashboard.models.types import UTCDateTime

BATCH = 20_000
_COLS = ("row_key, ts, source, line, no, operator, person_id, host, category, ok, purpose, "
         "action, redacted_fields")


@dataclass
class RerunResult:
    rows: int
    intervals: int
    findings: list[FindingOut]
    persisted: PersistResult | None


def _stream(session: Session, sql: str, **params: Any) -> Iterator[Any]:
    stmt = (text(sql).bindparams(*(bindparam(k, type_=UTCDateTime()) for k in params))
            .execution_options(stream_results=True, max_row_buffer=BATCH))
    result = session.execute(stmt, params)
    for part in result.partitions(BATCH):
        yield from part


def _order(session: Session, col: str) -> str:
    # binary order on both backends, which is Python's str order (the merge compares ids)
    return f'{col} COLLATE "C"' if session.get_bind().dialect.name == "postgresql" else col


def _access(row: Any) -> AccessIn:
    return AccessIn(key=row[0], ts=S.as_utc(row[1]), source=row[2], line=row[3], no=row[4],
                    operator=row[5], person_id=row[6], host=row[7], category=row[8],
                    ok=bool(row[9]), purpose=row[10], action=row[11],
                    redacted_fields=S.as_list(row[12]))


def access_rows(session: Session, since: datetime, until: datetime) -> Iterator[AccessIn]:
    sql = (f"SELECT {_COLS} FROM number_access WHERE ts >= :since AND ts < :until "
           f"ORDER BY {_order(session, 'person_id')}, ts, line, {_order(session, 'row_key')}")
    for row in _stream(session, sql, since=since, until=until):
        yield _access(row)


def presence_rows(session: Session, since: datetime, until: datetime
                  ) -> Iterator[tuple[str, Interval]]:
    sql = ("SELECT person_id, entered_at, left_at, door, enter_ref FROM presence "
           "WHERE entered_at IS NOT NULL AND entered_at <= :until AND "
           "(left_at IS NULL OR left_at >= :since) "
           f"ORDER BY {_order(session, 'person_id')}, entered_at")
    for p, a, b, door, ref in _stream(session, sql, since=since, until=until):
        yield p, Interval(S.as_utc(a), None if b is None else S.as_utc(b), door, ref or "")


class _Sweep:
    """Presence intervals of one person, swept forward as that person's rows advance in time."""

    def __init__(self, intervals: list[Interval], grace: float) -> None:
        self.ivs = intervals
        self.starts = [iv.start.timestamp() - grace for iv in intervals]  # type: ignore[union-attr]
        self.ends = [None if iv.end is None else iv.end.timestamp() + grace for iv in intervals]
        self.i = 0
        self.active: list[int] = []
        self.last: int | None = None

    def at(self, t: float) -> list[Interval]:
        n = len(self.ivs)
        while self.i < n and self.starts[self.i] <= t:
            self.active.append(self.i)
            self.i += 1
        keep = []
        for j in self.active:
            end = self.ends[j]
            if end is not None and end < t:
                if self.last is None or (self.ivs[j].end or 0) > (self.ivs[self.last].end or 0):  # type: ignore[operator]
                    self.last = j
            else:
                keep.append(j)
        self.active = keep
        out = [self.ivs[j] for j in keep]
        if self.last is not None:
            out.append(self.ivs[self.last])
        return out


def rerun(session: Session, since: datetime, until: datetime, now: datetime,
          settings: CorrelationSettings | None = None, loans: Iterable[LoanIn] | None = None,
          *, store: bool = True) -> RerunResult:
    s = settings or CorrelationSettings()
    g = timedelta(seconds=s.grace_s)
    w = timedelta(seconds=s.usb_window_s)
    lw = timedelta(seconds=s.failed_login_window_s)
    pw = timedelta(seconds=s.print_window_s)
    tiny = timedelta(microseconds=1)

    usb_by_host: dict[str, list[UsbIn]] = defaultdict(list)
    for u in S.usb_between(session, since - w, until + w + tiny):
        usb_by_host[u.host].append(u)
    usb_ts = {h: [u.ts.timestamp() for u in us] for h, us in usb_by_host.items()}
    prints = S.prints_between(session, since, until)
    print_people = {p.person_id for p in prints if p.person_id}
    person_rows: dict[str, list[AccessIn]] = defaultdict(list)
    for a in S.accesses_between(session, since - pw, since - tiny):
        if a.person_id in print_people:
            person_rows[a.person_id].append(a)
    logins: dict[str, deque[AccessIn]] = defaultdict(deque)
    for a in S.accesses_between(session, since - lw, since - tiny):
        if a.category == "login":
            logins[a.operator].append(a)

    found: list[FindingOut] = []
    pres = presence_rows(session, since - g, until + g)
    pending = next(pres, None)
    n_rows = n_ivs = 0
    gs, ws = g.total_seconds(), w.total_seconds()
    for person, group in groupby(access_rows(session, since, until), key=lambda a: a.person_id):
        ivs: list[Interval] = []
        if person is not None:
            while pending is not None and pending[0] < person:
                pending = next(pres, None)
            while pending is not None and pending[0] == person:
                ivs.append(pending[1])
                pending = next(pres, None)
            n_ivs += len(ivs)
        sweep = _Sweep(ivs, gs)
        keep_rows = person in print_people
        for a in group:
            n_rows += 1
            t = a.ts.timestamp()
            near = sweep.at(t) if person is not None else []
            usb: list[UsbIn] = []
            if a.host is not None and a.host in usb_ts:
                stamps = usb_ts[a.host]
                usb = usb_by_host[a.host][bisect_left(stamps, t - ws):bisect_right(stamps, t + ws)]
            prior: list[AccessIn] = []
            if a.category == "login":
                q = logins[a.operator]
                while q and q[0].ts < a.ts - lw:
                    q.popleft()
                if a.ok:
                    prior = list(q)
                q.append(a)
            found.extend(access_findings(a, near, usb, prior, s))
            if keep_rows:
                person_rows[person].append(a)  # type: ignore[index]

    out = Outcome(found=found)
    for p in prints:
        out.extend(print_outcome(p, person_rows.get(p.person_id or "", ()), s))
    for e in S.doors_between(session, since, until):
        f = R.door_incident(e, S.present_at(session, e.door, e.ts), s)
        if f is not None:
            out.found.append(f)
    for u in (u for us in usb_by_host.values() for u in us if since <= u.ts < until):
        f = R.usb_blocked(u, s)
        if f is not None:
            out.found.append(f)
    for f in S.backups_between(session, since, until):
        bf = R.backup_failed(f, s)
        if bf is not None:
            out.found.append(bf)
    periodic = Correlator(s).periodic_outcome(session, since, until, now, loans or ())
    out.found.extend(periodic.found)
    stored = None
    if store:
        have = {f.key for f in out.found}
        skip = {R.MEDIA_OVERDUE} if loans is None else set()  # media not given: not evaluated
        stale = [k for k, rule in session.execute(
            select(Finding.dedupe_key, Finding.rule).where(
                Finding.at >= since, Finding.at < until, Finding.withdrawn.is_(False)))
            if k not in have and rule not in skip]
        stored = persist(session, Outcome(found=out.found), now, withdraw_keys=stale)
    return RerunResult(rows=n_rows, intervals=n_ivs, findings=out.found, persisted=stored)
