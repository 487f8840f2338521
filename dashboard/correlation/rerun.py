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
from datetime import UTC, datetime, timedelta
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
from dashboard.models.numlog import NumberAccess
from dashboard.models.types import UTCDateTime

BATCH = 20_000
EPS = 0.001  # s: the database's epoch floats are approximate; near an edge, the rule decides


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


def _load(session: Session, ids: set[int]) -> dict[int, AccessIn]:
    out: dict[int, AccessIn] = {}
    wanted = sorted(ids)
    for i in range(0, len(wanted), 500):
        for r in session.scalars(select(NumberAccess).where(
                NumberAccess.id.in_(wanted[i : i + 500]))):
            out[r.id] = S.access_in(r)
    return out


def _with_ids(session: Session, since: datetime, until: datetime
              ) -> Iterator[tuple[int, AccessIn]]:
    for r in session.scalars(select(NumberAccess).where(
            NumberAccess.ts >= since, NumberAccess.ts <= until)
            .order_by(NumberAccess.ts, NumberAccess.line, NumberAccess.row_key)):
        yield r.id, S.access_in(r)


def _epoch_sql(session: Session, col: str) -> str:
    if session.get_bind().dialect.name == "postgresql":
        return f"extract(epoch from {col})::float8"
    return f"(julianday({col}) - 2440587.5) * 86400.0"  # SQLite keeps UTC text


def access_rows(session: Session, since: datetime, until: datetime) -> Iterator[Any]:
    """Slim rows, by person, time, line, key: what the pre-filter needs (epoch seconds as
    computed by the database: approximate, hence ``EPS``)."""
    cols = (f"id, {_epoch_sql(session, 'ts')}, person_id, host, category, ok, "
            "redacted_fields, operator")
    sql = (f"SELECT {cols} FROM number_access WHERE ts >= :since AND ts < :until "  # noqa: S608
           f"ORDER BY {_order(session, 'person_id')}, ts, line, {_order(session, 'row_key')}")
    return _stream(session, sql, since=since, until=until)


def presence_rows(session: Session, since: datetime, until: datetime) -> Iterator[Any]:
    """Raw (person_id, entered_at, left_at, door, enter_ref), by person and entry."""
    sql = (f"SELECT person_id, {_epoch_sql(session, 'entered_at')}, "  # noqa: S608
           f"{_epoch_sql(session, 'left_at')}, door, enter_ref, entered_at, left_at FROM presence "
           "WHERE entered_at IS NOT NULL AND entered_at <= :until AND "
           "(left_at IS NULL OR left_at >= :since) "
           f"ORDER BY {_order(session, 'person_id')}, entered_at")
    return _stream(session, sql, since=since, until=until)


class _Sweep:
    """One person's presence intervals (raw), swept forward as that person's rows advance in
    time. ``at(t)`` keeps ``active``: the intervals whose [start - grace, end + grace] holds t
    (so the row is covered iff it is not empty), and ``last``: the latest one that ended."""

    def __init__(self, raw: list[Any], grace: float) -> None:
        self.raw = raw
        self.starts = [r[1] - grace for r in raw]
        self.ends = [None if r[2] is None else r[2] + grace for r in raw]
        self.i = 0
        self.active: list[int] = []
        self.last: int | None = None

    def at(self, t: float) -> bool:
        """True only if some interval surely covers t (by more than EPS); borderline
        intervals stay active so that the rule, deciding exactly, sees them."""
        n = len(self.raw)
        while self.i < n and self.starts[self.i] <= t + EPS:
            self.active.append(self.i)
            self.i += 1
        solid = False
        if self.active:
            keep = []
            for j in self.active:
                end = self.ends[j]
                if end is not None and end < t - EPS:
                    if self.last is None or end > (self.ends[self.last] or 0.0):
                        self.last = j
                else:
                    keep.append(j)
                    if self.starts[j] <= t - EPS and (end is None or end >= t + EPS):
                        solid = True
            self.active = keep
        return solid

    def intervals(self) -> list[Interval]:
        idx = self.active + ([self.last] if self.last is not None else [])
        return [Interval(S.as_utc(self.raw[j][5]),
                         None if self.raw[j][6] is None else S.as_utc(self.raw[j][6]),
                         self.raw[j][3], self.raw[j][4] or "") for j in idx]


class _Hours:
    """``rules.is_working_time`` as epoch windows: per UTC day, the working windows of the local
    dates around it (weekday, holiday and hours decided once per local date)."""

    def __init__(self, s: CorrelationSettings) -> None:
        self.s = s
        self.days: dict[int, list[tuple[float, float]]] = {}

    def _windows(self, u: int) -> list[tuple[float, float]]:
        s = self.s
        day = datetime.fromtimestamp(u * 86400, UTC).date()
        out = []
        for d in (day - timedelta(days=1), day, day + timedelta(days=1)):
            start = datetime.combine(d, s.hours_start, s.zone)
            if R.is_working_time(start, s)[0]:
                out.append((start.timestamp(), datetime.combine(d, s.hours_end, s.zone).timestamp()))  # noqa: E501
        return out

    def working(self, t: float) -> bool:
        u = int(t // 86400)
        wins = self.days.get(u)
        if wins is None:
            wins = self.days[u] = self._windows(u)
        return any(lo + EPS <= t < hi - EPS for lo, hi in wins)  # near an edge: not sure


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
    early: dict[int, AccessIn] = {}
    logins: dict[str, deque[tuple[float, bool, int]]] = defaultdict(deque)
    for row_id, a in _with_ids(session, since - lw, since - tiny):
        if a.category == "login":
            logins[a.operator].append((a.ts.timestamp(), a.ok, row_id))
            early[row_id] = a

    doors = set(s.room_doors)
    pres = (r for r in presence_rows(session, since - g, until + g)
            if not doors or r[3] in doors)
    pending = next(pres, None)
    n_rows = n_ivs = 0
    gs, ws, lws = g.total_seconds(), w.total_seconds(), lw.total_seconds()
    hours = _Hours(s)
    # (row id, intervals, usb, ids of earlier log-ins) of rows some rule may fire on
    candidates: list[tuple[int, list[Interval], list[UsbIn], list[int]]] = []
    kept: dict[str, list[int]] = defaultdict(list)
    for person, group in groupby(access_rows(session, since, until), key=lambda r: r[2]):
        raw: list[Any] = []
        if person is not None:
            while pending is not None and pending[0] < person:
                pending = next(pres, None)
            while pending is not None and pending[0] == person:
                raw.append(pending)
                pending = next(pres, None)
            n_ivs += len(raw)
        sweep = _Sweep(raw, gs)
        keep_rows = person in print_people
        for row_id, ts, _p, host, category, ok_raw, red, operator in group:
            n_rows += 1
            t = float(ts)
            ok = bool(ok_raw)
            covered = sweep.at(t) if person is not None else False
            if keep_rows:
                kept[person].append(row_id)  # type: ignore[index]
            usb: list[UsbIn] = []
            prior: list[int] = []
            if category == "login":
                q = logins[operator]
                while q and q[0][0] < t - lws - EPS:
                    q.popleft()
                if ok:
                    fails = 0
                    for _t, good, _i in q:
                        fails = 0 if good else fails + 1
                    if fails >= s.failed_login_threshold:
                        prior = [i for _t, _g, i in q]
                q.append((t, ok, row_id))
                candidate = bool(prior) or person is None or S.as_list(red) != ()
            else:
                if host is not None and host in usb_ts and ok:
                    stamps = usb_ts[host]
                    usb = usb_by_host[host][bisect_left(stamps, t - ws - EPS):
                                            bisect_right(stamps, t + ws + EPS)]
                candidate = (bool(usb) or person is None or (ok and not covered)
                             or S.as_list(red) != () or not hours.working(t))
            if candidate:  # otherwise every rule returns None (their cheap negative tests)
                near = sweep.intervals() if person is not None else []
                candidates.append((row_id, near, usb, prior))

    need = {c[0] for c in candidates} | {i for c in candidates for i in c[3]}
    need |= {i for ids in kept.values() for i in ids}
    full = _load(session, need - set(early))
    full.update(early)
    found: list[FindingOut] = []
    for row_id, near, usb, prior in candidates:
        found.extend(access_findings(full[row_id], near, usb, [full[i] for i in prior], s))
    for person, ids in kept.items():
        person_rows[person].extend(full[i] for i in ids)

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
    for b in S.backups_between(session, since, until):
        bf = R.backup_failed(b, s)
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
