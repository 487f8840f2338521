"""The periodic checks (missed backups, overdue media, periodic wipes overdue, node-log gaps),
run every few minutes by the correlation listener and over a whole period by ``rerun``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from dashboard.correlation import rules as R
from dashboard.correlation import sources as S
from dashboard.correlation.host_eval import exits_outcome
from dashboard.correlation.settings import CorrelationSettings
from dashboard.correlation.store import PersistResult, persist
from dashboard.correlation.types import LoanIn, Outcome
from dashboard.media import wipes


def periodic_outcome(session: Session, since: datetime, until: datetime, now: datetime,
                     loans: Iterable[LoanIn], s: CorrelationSettings) -> Outcome:
    out = Outcome()
    cps = R.backup_checkpoints(since, until, now, s)
    if cps:
        snaps = S.backups_between(session, cps[0] - timedelta(hours=s.backup_max_age_h),
                                  cps[-1] + timedelta(microseconds=1))
        for cp in cps:
            day = cp.astimezone(s.zone).date().isoformat()
            out.add(R.key(R.BACKUP_MISSING, day), R.backup_missing(cp, snaps, s))
    for loan in loans:
        out.add(R.key(R.MEDIA_OVERDUE, loan.control_number, loan.due_back.isoformat()),
                R.media_overdue(loan, now, s))
    for due in wipes.dues(session):
        out.add(R.key(wipes.RULE, due.control_number, due.due.isoformat()),
                wipes.wipe_overdue(due, now, s))
    for issue in S.log_issues(session, since, until):
        out.found.append(R.log_issue(issue, s))
    out.extend(exits_outcome(session, since, until, now, s))  # PC sessions left open
    return out


def tick(session: Session, now: datetime, loans: Iterable[LoanIn], s: CorrelationSettings,
         lookback: timedelta = timedelta(days=2)) -> PersistResult:
    """Run by the dashboard every few minutes: backups, overdue media, node-log gaps."""
    return persist(session, periodic_outcome(session, now - lookback, now, now, loans, s), now)


