"""A live print release is judged when it is stored; the number-log rows of its window often
arrive later (the nightly CSV). Importing them re-judges the print at once: the false "print
without access" finding is withdrawn, its anomaly resolved by the correlation (audited), and the
output record takes its place, on the per-row path and on the bulk path alike, equal to a
re-run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.correlation import rules as R
from dashboard.correlation import sources as S
from dashboard.correlation.engine import Correlator
from dashboard.correlation.rerun import rerun
from dashboard.correlation.store import ACTOR
from dashboard.correlation.types import AccessIn
from dashboard.models.anomalies import Anomaly
from dashboard.models.audit import AuditRecord
from dashboard.models.correlation import Finding
from dashboard.numlog.service import import_csv
from tests.dashboard.correlation import world as W


@pytest.mark.parametrize("bulk_threshold", [10**9, 1], ids=["per_row", "bulk"])
def test_rows_imported_after_a_live_print_rejudge_it(
    db: sessionmaker[Session], bulk_threshold: int
) -> None:
    day = W.workdays()[6]
    w = W.World()
    w.door("P30", "in", W.L(day, 9))
    w.print_("P30", W.L(day, 15))  # live: before the CSV, so "without access" for now
    w.print_("P31", W.L(day, 15, 5))  # P31 has no access at all: stays "without access"
    w.door("P30", "out", W.L(day, 18))
    c = Correlator(bulk_threshold=bulk_threshold)
    with db() as s:
        W.setup_people(s)
        W.ingest(s, w, c)
        before = {f.rule: f for f in s.scalars(select(Finding).where(Finding.person_id == "P30"))}
        assert set(before) == {R.PRINT_WITHOUT_ACCESS}
        anomaly_id = before[R.PRINT_WITHOUT_ACCESS].anomaly_id
        assert anomaly_id is not None
        assert s.get(Anomaly, anomaly_id).state == "open"  # type: ignore[union-attr]

    # the nightly CSV: P30 viewed numbers at 12:00 (3 h before the print), and other rows
    rows = W.World()
    rows.row("P30", W.L(day, 12), "マイナンバー閲覧", "閲覧")
    rows.row("P32", W.L(day, 10), "マイナンバー閲覧", "閲覧")
    with db() as s:
        import_csv(
            s,
            W.csv_bytes(rows),
            source="cells",
            now=W.NOW,
            zone=W.ZONE,
            correlator=c,
            filename="night.csv",
        )
        s.commit()

    with db() as s:
        mine = {f.rule: f for f in s.scalars(select(Finding).where(Finding.person_id == "P30"))}
        assert set(mine) == {R.PRINT_WITHOUT_ACCESS, R.PRINT_AFTER_ACCESS}
        gone, record = mine[R.PRINT_WITHOUT_ACCESS], mine[R.PRINT_AFTER_ACCESS]
        assert gone.withdrawn and gone.withdrawn_at == W.NOW and not record.withdrawn
        assert record.severity == "info" and record.anomaly_id is None
        a = s.get(Anomaly, anomaly_id)
        assert a is not None and a.state == "resolved" and a.reason.startswith("withdrawn")
        audit = s.scalars(
            select(AuditRecord).where(
                AuditRecord.action == "anomaly.resolve", AuditRecord.target_id == str(anomaly_id)
            )
        ).all()
        assert [r.actor for r in audit] == [ACTOR]
        other = s.scalars(select(Finding).where(Finding.person_id == "P31")).one()
        assert other.rule == R.PRINT_WITHOUT_ACCESS and not other.withdrawn
        live = {
            f.dedupe_key
            for f in s.scalars(
                select(Finding).where(
                    Finding.withdrawn.is_(False),
                    Finding.rule.in_((R.PRINT_AFTER_ACCESS, R.PRINT_WITHOUT_ACCESS)),
                )
            )
        }
        full = rerun(s, W.L(day, 0), W.L(day + timedelta(days=1), 0), W.NOW, store=False)
        assert live == {
            f.key for f in full.findings if f.rule in (R.PRINT_AFTER_ACCESS, R.PRINT_WITHOUT_ACCESS)
        }


class _NotYet:
    """The listener has not correlated the stored event yet."""

    def on_stored(self, *_args: Any) -> None:
        return None


def test_a_live_judgment_that_read_before_the_import_committed_does_not_undo_it(
    db: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener reads the print's window, the nightly import commits its rows and re-judges
    the print (after an access), then the listener stores its judgment: it must not withdraw
    the newer one and raise a false "print without access"."""
    day = W.workdays()[6]
    w = W.World()
    w.door("P30", "in", W.L(day, 9))
    w.print_("P30", W.L(day, 15))
    c = Correlator(bulk_threshold=10**9)
    with db() as s:
        W.setup_people(s)
        W.ingest(s, w, _NotYet())  # type: ignore[arg-type]
    rows = W.World()
    rows.row("P30", W.L(day, 12), "マイナンバー閲覧", "閲覧")
    with db() as s:
        import_csv(s, W.csv_bytes(rows), source="cells", now=W.NOW, zone=W.ZONE, correlator=c)
        s.commit()
        assert {f.rule for f in s.scalars(select(Finding))} == {R.PRINT_AFTER_ACCESS}

    real = S.accesses_between
    calls: list[int] = []

    def stale_first(*args: Any, **kw: Any) -> list[AccessIn]:
        calls.append(1)
        return [] if len(calls) == 1 else real(*args, **kw)  # read before the import committed

    monkeypatch.setattr(S, "accesses_between", stale_first)
    with db() as s:
        c.on_stored(s, "gw1", 2, W.NOW)  # the print (gw1:1 is the door)
        s.commit()
    monkeypatch.undo()
    with db() as s:
        live = {f.rule for f in s.scalars(select(Finding).where(Finding.withdrawn.is_(False)))}
        assert live == {R.PRINT_AFTER_ACCESS}
        assert not s.scalars(select(Finding).where(Finding.withdrawn.is_(True))).all()
        assert not [a for a in s.scalars(select(Anomaly)) if a.kind.startswith("corr.")]
