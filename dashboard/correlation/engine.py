"""Incremental correlation (one new row or event at once) and the periodic checks.

The full re-run over a period lives in ``rerun.py``; both call the rule bundles in
``evaluate.py`` with the same inputs, so they produce the same dedupe keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.correlation import host_eval
from dashboard.correlation import rules as R
from dashboard.correlation import sources as S
from dashboard.correlation.evaluate import access_outcome, print_outcome
from dashboard.correlation.periodic import periodic_outcome, tick
from dashboard.correlation.settings import CorrelationSettings
from dashboard.correlation.store import PersistResult, persist
from dashboard.correlation.types import AccessIn, LoanIn, LogIssueIn, Outcome
from dashboard.models.correlation import Finding
from dashboard.models.events import StoredEvent
from dashboard.models.numlog import NumberAccess


class Correlator:
    def __init__(self, settings: CorrelationSettings | None = None, *,
                 bulk_threshold: int = 200) -> None:
        self.s = settings or CorrelationSettings()
        self.bulk_threshold = bulk_threshold

    def _bulk(self, session: Session, rows: Sequence[NumberAccess | AccessIn], now: datetime
              ) -> PersistResult:
        """A big import: a set-based re-run over the rows' time span (same rules, same keys),
        then the prints just after the span, whose window the new rows may reach into."""
        from dashboard.correlation.rerun import rerun

        lo = min(r.ts for r in rows)
        hi = max(r.ts for r in rows) + timedelta(microseconds=1)
        res = rerun(session, lo, hi, now, self.s)
        assert res.persisted is not None
        out = Outcome()
        for p in S.prints_between(session, hi, hi + timedelta(seconds=self.s.print_window_s)):
            out.extend(self._print(session, p))
        more = persist(session, out, now)
        res.persisted.new += more.new
        res.persisted.withdrawn += more.withdrawn
        res.persisted.anomalies += more.anomalies
        return res.persisted

    # -- number-access rows ------------------------------------------------------------------

    def access_context(self, session: Session, a: AccessIn) -> Outcome:
        s = self.s
        g = timedelta(seconds=s.grace_s)
        w = timedelta(seconds=s.usb_window_s)
        intervals = (S.presence_of(session, a.person_id, a.ts - g, a.ts + g)
                     if a.person_id and a.category != "login" else [])
        usb = (S.usb_between(session, a.ts - w, a.ts + w + timedelta(microseconds=1))
               if a.host and a.category != "login" else [])
        logins: list[AccessIn] = []
        if a.category == "login" and a.ok:
            lw = timedelta(seconds=s.failed_login_window_s)
            logins = [r for r in S.accesses_between(session, a.ts - lw, a.ts, operator=a.operator)
                      if r.category == "login"]
        return access_outcome(a, intervals, usb, logins, s)

    def on_rows(self, session: Session, rows: Sequence[NumberAccess | AccessIn], now: datetime
                ) -> PersistResult:
        """Correlate newly stored rows (after they are flushed, so they see each other). Rows
        must be new: their own keys are not checked for withdrawal."""
        s = self.s
        if len(rows) >= self.bulk_threshold:
            return self._bulk(session, rows, now)
        items = sorted((r if isinstance(r, AccessIn) else S.access_in(r) for r in rows),
                       key=lambda a: (a.ts, a.line, a.key))
        out = Outcome()
        successes: dict[str, AccessIn] = {}
        print_persons: dict[str, tuple[datetime, datetime]] = {}
        for a in items:
            fresh = self.access_context(session, a)
            out.found += fresh.found  # a new row's keys cannot exist yet: nothing to clear
            if a.category == "login" and not a.ok:
                # a failure that arrives after the success it precedes: re-check that success
                lw = timedelta(seconds=s.failed_login_window_s)
                for r in S.accesses_between(session, a.ts, a.ts + lw, operator=a.operator):
                    if r.category == "login" and r.ok:
                        successes[r.key] = r
            elif a.person_id and a.ok and a.category != "login":
                lo, hi = print_persons.get(a.person_id, (a.ts, a.ts))
                print_persons[a.person_id] = (min(lo, a.ts), max(hi, a.ts))
        for r in successes.values():
            out.extend(self.access_context(session, r))
        # file accesses in number-data folders these rows now explain
        out.extend(host_eval.after_new_accesses(session, items, s))
        pw = timedelta(seconds=s.print_window_s)
        for person, (lo, hi) in print_persons.items():
            for p in S.prints_between(session, lo, hi + pw + timedelta(microseconds=1)):
                if p.person_id == person:
                    out.extend(self._print(session, p))
        return persist(session, out, now)

    def _print(self, session: Session, p: Any) -> Outcome:
        pw = timedelta(seconds=self.s.print_window_s)
        acc = ([] if p.person_id is None else
               S.accesses_between(session, p.ts - pw, p.ts, person_id=p.person_id))
        return print_outcome(p, acc, self.s)

    def _print_live(self, session: Session, p: Any) -> Outcome:
        """A print as its event is stored. Rows are only ever added, and an import re-judges
        the prints in its rows' window; if that already found this print after an access while
        this judgment found none, this one read before the import committed (the listener runs
        next to the importer): judged again, on what is committed now, instead of withdrawing
        the newer result."""
        out = self._print(session, p)
        after = R.key(R.PRINT_AFTER_ACCESS, p.ref)
        if after in out.cleared and session.scalar(select(Finding.id).where(
                Finding.dedupe_key == after, Finding.withdrawn.is_(False))) is not None:
            out = self._print(session, p)
        return out

    # -- node events -------------------------------------------------------------------------

    def on_event(self, session: Session, *, node: str, seq: int, kind: str, ts: datetime,
                 data: dict[str, Any], door: str | None = None, chain_ok: bool = True,
                 now: datetime) -> PersistResult:
        s = self.s
        out = Outcome()
        if not chain_ok:
            out.found.append(R.log_issue(LogIssueIn(node, "chain", ts, seq, seq), s))
        if kind == S.USB_KIND:
            u = S.usb_in(node, seq, ts, data)
            if u is not None:
                out.add(R.key(R.USB_BLOCKED, u.ref), R.usb_blocked(u, s))
                w = timedelta(seconds=s.usb_window_s)
                if u.storage:
                    for a in S.accesses_between(session, ts - w, ts + w, host=u.host):
                        out.extend(self.access_context(session, a))
        elif kind == S.PRINT_KIND:
            out.extend(self._print_live(session, S.print_in(node, seq, ts, data)))
        elif kind in S.DOOR_KINDS:
            e = S.door_in(node, seq, ts, kind, door, data)
            out.add(R.key(R.DOOR_FORCED if kind == "door.forced" else R.DOOR_HELD_OPEN, e.ref),
                    R.door_incident(e, S.present_at(session, e.door, ts), s))
        elif kind in S.BACKUP_KINDS:
            b = S.backup_in(node, seq, ts, kind, data)
            out.add(R.key(R.BACKUP_FAILED, b.ref), R.backup_failed(b, s))
        elif kind.startswith("host."):
            e = host_eval.host_event(node, seq, ts, kind, data)
            if e is not None:
                out.extend(host_eval.event_outcome(session, e, s))
        return persist(session, out, now)

    def on_stored(self, session: Session, node: str, seq: int, now: datetime) -> PersistResult:
        """Correlate one event the ingest stored (wire to the bus's "event" messages)."""
        ev = session.scalars(select(StoredEvent).where(
            StoredEvent.node == node, StoredEvent.seq == seq)).first()
        if ev is None:
            return PersistResult()
        return self.on_event(session, node=node, seq=seq, kind=ev.kind, ts=ev.ts,
                             data=ev.data if isinstance(ev.data, dict) else {}, door=ev.door,
                             chain_ok=ev.chain_ok, now=now)

    # -- periodic ----------------------------------------------------------------------------

    def periodic_outcome(self, session: Session, since: datetime, until: datetime,
                         now: datetime, loans: Iterable[LoanIn]) -> Outcome:
        return periodic_outcome(session, since, until, now, loans, self.s)

    def tick(self, session: Session, now: datetime, loans: Iterable[LoanIn] = (),
             lookback: timedelta = timedelta(days=2)) -> PersistResult:
        return tick(session, now, loans, self.s, lookback)


def rows_by_keys(session: Session, keys: Sequence[str]) -> list[NumberAccess]:
    out: list[NumberAccess] = []
    for i in range(0, len(keys), 500):
        out.extend(session.scalars(select(NumberAccess).where(
            NumberAccess.row_key.in_(list(keys[i : i + 500])))))
    return out
