"""The full re-run over a period: set-based reads and sorted merges, no per-row queries.

Number-access rows stream ordered by (person, ts, line, key) and presence intervals by
(person, entered_at); per person, the intervals become sorted epoch arrays and each row is checked
with two binary searches (covered by some interval, by more than ``EPS``?). Working time is a
binary search in the period's working windows. USB events, prints, backups and door incidents of
the period are few and are held in memory, indexed by host or person. Rows some rule may fire on
(the candidates) go through ``evaluate.access_findings``, the same rule bundle the incremental
path uses, so both give the same dedupe keys. Findings of the period that the data no longer
supports are marked withdrawn.

The two big streams are read through the driver's own cursor (a server-side cursor on
PostgreSQL), as plain tuples of the few columns the pre-filter needs.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import Any
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.correlation import rules as R
from dashboard.correlation import sources as S
from dashboard.correlation.evaluate import access_findings, print_outcome
from dashboard.correlation.host_eval import period_outcome
from dashboard.correlation.periodic import periodic_outcome
from dashboard.correlation.settings import CorrelationSettings
from dashboard.correlation.store import PersistResult, persist
from dashboard.correlation.types import AccessIn, FindingOut, Interval, LoanIn, Outcome, UsbIn
from dashboard.models.correlation import Finding
from dashboard.models.events import Presence
from dashboard.models.numlog import NumberAccess
from dashboard.models.types import UTCDateTime

BATCH = 20_000
EPS = 0.001  # s: the database's epoch floats are approximate; near an edge, the rule decides
INF = float("inf")


@dataclass
class RerunResult:
    rows: int
    intervals: int
    findings: list[FindingOut]
    persisted: PersistResult | None


def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _stream(session: Session, sql: str, params: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Rows of ``sql`` (``:name`` parameters) as the driver's tuples, ``BATCH`` at a time, on the
    session's connection and transaction. Datetime parameters are bound as the models bind them;
    on PostgreSQL through a named (server-side) cursor."""
    conn = session.connection()
    dialect = conn.dialect
    bind = UTCDateTime().bind_processor(dialect)
    args = {k: bind(v) if bind is not None and isinstance(v, datetime) else v
            for k, v in params.items()}
    raw = conn.connection.driver_connection
    assert raw is not None
    if dialect.name == "postgresql":
        sql = re.sub(r"(?<!:):(\w+)",
                     lambda m: f"%({m[1]})s" if m[1] in params else m[0], sql)
        cur = raw.cursor(name=f"corr_{uuid4().hex[:12]}")
        cur.itersize = BATCH
    else:
        cur = raw.cursor()
    try:
        cur.execute(sql, args)
        while True:
            part = cur.fetchmany(BATCH)
            if not part:
                break
            yield from part
    finally:
        cur.close()


def _order(session: Session, col: str) -> str:
    # binary order on both backends, which is Python's str order (the merge compares ids)
    return f'{col} COLLATE "C"' if _pg(session) else col


def _load(session: Session, ids: set[int]) -> dict[int, AccessIn]:
    out: dict[int, AccessIn] = {}
    wanted = sorted(ids)
    for i in range(0, len(wanted), 500):
        for r in session.scalars(select(NumberAccess).where(
                NumberAccess.id.in_(wanted[i : i + 500]))):
            out[r.id] = S.access_in(r)
    return out


def _intervals(session: Session, ids: set[int]) -> dict[int, Interval]:
    out: dict[int, Interval] = {}
    wanted = sorted(ids)
    for i in range(0, len(wanted), 500):
        for pid, a, b, door, ref in session.execute(
                select(Presence.id, Presence.entered_at, Presence.left_at, Presence.door,
                       Presence.enter_ref).where(Presence.id.in_(wanted[i : i + 500]))):
            out[pid] = Interval(a, b, door, ref or "")
    return out


def _with_ids(session: Session, since: datetime, until: datetime
              ) -> Iterator[tuple[int, AccessIn]]:
    for r in session.scalars(select(NumberAccess).where(
            NumberAccess.ts >= since, NumberAccess.ts <= until)
            .order_by(NumberAccess.ts, NumberAccess.line, NumberAccess.row_key)):
        yield r.id, S.access_in(r)


def _epoch_sql(session: Session, col: str) -> str:
    if _pg(session):
        return f"extract(epoch from {col})::float8"
    return f"(julianday({col}) - 2440587.5) * 86400.0"  # SQLite keeps UTC text


def access_rows(session: Session, since: datetime, until: datetime) -> Iterator[Any]:
    """Slim rows (id, epoch, person, host, is log-in, ok, has redacted fields, operator): what
    the pre-filter needs. By person, time and id, as the (person, ts) index gives them (SQLite's
    holds the rowid): among rows of the same time the rules' order is (line, key), which the
    log-in check allows for. Epoch seconds as the database computes them: approximate, hence
    ``EPS``. "Has redacted fields" is any stored list but ``[]`` (a candidate; the rule
    decides)."""
    cols = (f"id, {_epoch_sql(session, 'ts')}, person_id, host, category = 'login', ok, "
            "CAST(redacted_fields AS TEXT) <> '[]', operator")
    sql = (f"SELECT {cols} FROM number_access WHERE ts >= :since AND ts < :until "  # noqa: S608
           f"ORDER BY {_order(session, 'person_id')}, ts, id")
    return _stream(session, sql, {"since": since, "until": until})


def presence_rows(session: Session, since: datetime, until: datetime,
                  doors: Iterable[str] = ()) -> Iterator[Any]:
    """(person_id, entered epoch, left epoch or None, id) of the intervals that may touch
    [since, until] (of ``doors`` if given), by person and entry."""
    params: dict[str, Any] = {"since": since, "until": until}
    door_sql = ""
    names = sorted(set(doors))
    if names:
        params.update({f"door{i}": d for i, d in enumerate(names)})
        door_sql = " AND door IN (" + ", ".join(f":door{i}" for i in range(len(names))) + ")"
    sql = (f"SELECT person_id, {_epoch_sql(session, 'entered_at')}, "  # noqa: S608
           f"{_epoch_sql(session, 'left_at')}, id FROM presence "
           "WHERE entered_at IS NOT NULL AND entered_at <= :until AND "
           f"(left_at IS NULL OR left_at >= :since){door_sql} "
           f"ORDER BY {_order(session, 'person_id')}, entered_at")
    return _stream(session, sql, params)


class _Person:
    """One person's presence intervals as sorted epoch arrays (grace applied): ``solid(t)`` is
    true only if some interval surely covers t (by more than EPS), by two binary searches over
    the starts and the running maximum of the ends."""

    __slots__ = ("ids", "starts", "ends", "maxend", "_argmax")

    def __init__(self, raw: list[Any], grace: float) -> None:
        self.ids = [r[3] for r in raw]
        self.starts = [r[1] - grace for r in raw]
        self.ends = [INF if r[2] is None else r[2] + grace for r in raw]
        self.maxend = list(accumulate(self.ends, max))
        self._argmax: list[int] | None = None

    def solid(self, t: float) -> bool:
        k = bisect_right(self.starts, t - EPS) - 1
        return k >= 0 and self.maxend[k] >= t + EPS

    def _latest(self, upto: int) -> int:
        """The index of the latest end among the first ``upto`` intervals (the first such)."""
        if self._argmax is None:
            ends, best, out = self.ends, 0, []
            for j, e in enumerate(ends):
                if e > ends[best]:
                    best = j
                out.append(best)
            self._argmax = out
        return self._argmax[upto - 1]

    def near(self, t: float) -> list[int]:
        """Ids of the intervals around t: those started by t (+EPS) and not ended before it
        (-EPS; borderline ones included, the rule decides exactly), and the latest one that
        ended before."""
        k2 = bisect_right(self.starts, t + EPS)
        first = bisect_left(self.maxend, t - EPS, 0, k2)
        ends = self.ends
        last = -1
        if first > 0:  # every interval before ``first`` ended before t: the latest of them
            last = self._latest(first)
        active: list[int] = []
        for j in range(first, k2):
            if ends[j] >= t - EPS:
                active.append(j)
            elif last < 0 or ends[j] > ends[last]:
                last = j
        return [self.ids[j] for j in active + ([last] if last >= 0 else [])]


def _working_windows(since: datetime, until: datetime, s: CorrelationSettings
                     ) -> tuple[list[float], list[float]]:
    """``rules.is_working_time`` as sorted epoch windows [start, end) over the period's local
    dates (weekday, holiday and hours decided once per date)."""
    starts: list[float] = []
    ends: list[float] = []
    d: date = since.astimezone(s.zone).date() - timedelta(days=1)
    last = until.astimezone(s.zone).date() + timedelta(days=1)
    while d <= last:
        start = datetime.combine(d, s.hours_start, s.zone)
        end = datetime.combine(d, s.hours_end, s.zone)
        if end > start and R.is_working_time(start, s)[0]:
            starts.append(start.timestamp())
            ends.append(end.timestamp())
        d += timedelta(days=1)
    return starts, ends


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

    pres = presence_rows(session, since - g, until + g, s.room_doors)
    pending = next(pres, None)
    n_rows = n_ivs = 0
    gs, ws, lws = g.total_seconds(), w.total_seconds(), lw.total_seconds()
    threshold = s.failed_login_threshold
    wlo, whi = _working_windows(since, until, s)
    # (row id, ids of the intervals around it, ids of earlier log-ins) of rows some rule may
    # fire on; every other row passes every rule's cheap negative test
    candidates: list[tuple[int, list[int], list[int]]] = []
    retie: dict[int, list[int]] = {}  # log-in successes to check again with their tied rows
    kept: dict[str, list[int]] = defaultdict(list)
    person: str | None = None
    cur: _Person | None = None
    starts: list[float] = []
    maxend: list[float] = []
    keep_rows = False
    first = True
    for row_id, ts, p, host, is_login, ok_raw, red, operator in access_rows(session, since,
                                                                          until):
        if first or p != person:
            first = False
            person = p
            cur = None
            if p is not None:
                raw: list[Any] = []
                while pending is not None and pending[0] < p:
                    pending = next(pres, None)
                while pending is not None and pending[0] == p:
                    raw.append(pending)
                    pending = next(pres, None)
                n_ivs += len(raw)
                cur = _Person(raw, gs)
                starts, maxend = cur.starts, cur.maxend
            keep_rows = p in print_people
        n_rows += 1
        t = ts  # a float from both drivers
        if keep_rows:
            kept[p].append(row_id)  # type: ignore[index]
        if is_login:
            q = logins[operator]
            while q and q[0][0] < t - lws - EPS:
                q.popleft()
            ok = bool(ok_raw)
            if q and q[-1][0] >= t - EPS:
                # tied with the operator's previous row (same second): the stream's order among
                # them (by id) need not be the rule's (line, key), so every success of the tie
                # is checked again with all of them
                ids = [i for _t, _g, i in q] + [row_id]
                for tt, good, i in q:
                    if good and tt >= t - EPS:
                        retie[i] = ids
            prior: list[int] = []
            if ok:
                # failures since the operator's last success; with ties, every failure at or
                # after that success's time (an upper bound: the rule counts exactly)
                last_ok = max((tt for tt, good, _i in q if good), default=-INF)
                fails = sum(1 for tt, good, _i in q if not good and tt >= last_ok - EPS)
                if fails >= threshold:
                    prior = [i for _t, _g, i in q]
            q.append((t, ok, row_id))
            if prior or cur is None or red:
                candidates.append((row_id, [] if cur is None else cur.near(t), prior))
            continue
        if cur is None or red:
            candidates.append((row_id, [] if cur is None else cur.near(t), []))
            continue
        k = bisect_right(wlo, t - EPS) - 1
        if k < 0 or t >= whi[k] - EPS:  # maybe outside working time (near an edge: not sure)
            candidates.append((row_id, cur.near(t), []))
            continue
        if not ok_raw:
            continue
        if host is not None and host in usb_ts:
            stamps = usb_ts[host]
            if bisect_left(stamps, t - ws - EPS) < bisect_right(stamps, t + ws + EPS):
                candidates.append((row_id, cur.near(t), []))
                continue
        k = bisect_right(starts, t - EPS) - 1  # cur.solid(t), inlined
        if k < 0 or maxend[k] < t + EPS:
            candidates.append((row_id, cur.near(t), []))
    pres.close()  # closes its cursor

    if retie:
        at = {c[0]: n for n, c in enumerate(candidates)}
        for row_id, ids in retie.items():
            if row_id in at:
                c = candidates[at[row_id]]
                candidates[at[row_id]] = (row_id, c[1], list(dict.fromkeys(c[2] + ids)))
            else:
                candidates.append((row_id, [], ids))
    need = {c[0] for c in candidates} | {i for c in candidates for i in c[2]}
    need |= {i for ids in kept.values() for i in ids}
    full = _load(session, need - set(early))
    full.update(early)
    ivs = _intervals(session, {i for c in candidates for i in c[1]})
    found: list[FindingOut] = []
    for row_id, near_ids, prior in candidates:
        a = full[row_id]
        near = [ivs[i] for i in near_ids]
        usb: list[UsbIn] = []
        if a.host is not None and a.ok and a.category != "login" and a.host in usb_ts:
            stamps = usb_ts[a.host]
            t = a.ts.timestamp()
            usb = usb_by_host[a.host][bisect_left(stamps, t - ws - EPS):
                                      bisect_right(stamps, t + ws + EPS)]
        found.extend(access_findings(a, near, usb, [full[i] for i in prior], s))
    for p, ids in kept.items():
        person_rows[p].extend(full[i] for i in ids)

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
    periodic = periodic_outcome(session, since, until, now, loans or (), s)
    out.found.extend(periodic.found)
    out.found.extend(period_outcome(session, since, until, s).found)
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
