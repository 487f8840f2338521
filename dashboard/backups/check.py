"""The 26-hour check: an anomaly when no good snapshot is younger than ``backup_max_age_h``.

The rule is the correlation's own (``dashboard.correlation.rules.backup_missing``) evaluated at
``now`` instead of at the morning checkpoint, and its finding is stored through the
correlation's ``persist`` (which raises the anomaly through ``dashboard.anomalies``). Both paths
use the same key (one per site-local day), so the periodic check and the correlation's morning
check never alarm twice for the same day. A good snapshot arriving later does not withdraw the
alarm: a missed night stays on record until someone acknowledges it with a reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from controller.envelope import now_utc
from dashboard.anomalies import anomaly_dict
from dashboard.correlation import rules as R
from dashboard.correlation import sources as S
from dashboard.correlation.settings import CorrelationSettings
from dashboard.correlation.store import persist
from dashboard.correlation.types import BackupIn, Outcome
from dashboard.models.anomalies import Anomaly
from dashboard.models.correlation import Finding
from dashboard.models.events import StoredEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgeCheck:
    now: datetime
    last_good: datetime | None
    overdue: bool
    key: str | None = None  # the finding's dedupe key when overdue
    anomaly_id: int | None = None
    new: bool = False  # this call stored the finding (and raised the anomaly)


def last_good(session: Session, now: datetime, scan: int = 50) -> BackupIn | None:
    """The newest good snapshot at or before ``now`` (a few newest snapshot events checked)."""
    q = (select(StoredEvent.node, StoredEvent.seq, StoredEvent.ts, StoredEvent.data)
         .where(StoredEvent.kind == "backup.snapshot", StoredEvent.ts <= now)
         .order_by(StoredEvent.ts.desc()).limit(scan))
    for node, seq, ts, data in session.execute(q):
        b = S.backup_in(node, seq, ts, "backup.snapshot", data if isinstance(data, dict) else {})
        if b.ok:
            return b
    return None


def check_backup_age(session: Session, now: datetime,
                     settings: CorrelationSettings | None = None) -> AgeCheck:
    """Evaluate the rule at ``now``; store the finding and raise the anomaly when overdue.

    The caller commits (``BackupWatch.run_once`` does)."""
    s = settings or CorrelationSettings()
    window = timedelta(hours=s.backup_max_age_h)
    snaps = S.backups_between(session, now - window, now + timedelta(microseconds=1))
    newest = last_good(session, now)
    if newest is not None and newest not in snaps:
        snaps.append(newest)
    finding = R.backup_missing(now, snaps, s)
    last = newest.ts if newest is not None else None
    if finding is None:
        return AgeCheck(now=now, last_good=last, overdue=False)
    result = persist(session, Outcome(found=[finding]), now)
    anomaly_id = session.scalar(select(Finding.anomaly_id).where(
        Finding.dedupe_key == finding.key))
    return AgeCheck(now=now, last_good=last, overdue=True, key=finding.key,
                    anomaly_id=anomaly_id, new=finding.key in result.new)


class BackupWatch:
    """Runs the check every ``interval_s`` in a thread (a runtime part: start / stop).

    A failed run (database unavailable) is counted and logged, and retried at the next tick;
    ``last`` holds the last completed check."""

    def __init__(self, sessionmaker: Any, *, settings: CorrelationSettings | None = None,
                 interval_s: float = 300.0, clock: Callable[[], datetime] = now_utc,
                 bus: Any = None) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings or CorrelationSettings()
        self.interval_s = interval_s
        self.clock = clock
        self.bus = bus
        self.failures = 0
        self.last: AgeCheck | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> AgeCheck:
        message = None
        with self.sessionmaker.begin() as session:
            result = check_backup_age(session, self.clock(), self.settings)
            if result.new and result.anomaly_id is not None:
                anomaly = session.get(Anomaly, result.anomaly_id)
                message = anomaly_dict(anomaly) if anomaly is not None else None
        self.last = result
        if message is not None and self.bus is not None:
            self.bus.publish("anomaly", message)  # after the commit, as the ingest does
        return result

    def _loop(self) -> None:
        while True:
            try:
                self.run_once()
                self.last_error = None
            except SQLAlchemyError as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.error("backup age check failed (retrying in %.0f s): %s",
                          self.interval_s, self.last_error)
            if self._stop.wait(self.interval_s):
                return

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="backup-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
