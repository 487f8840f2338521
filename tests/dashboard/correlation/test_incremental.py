"""Row by row (small imports, each row correlated at once) gives the same findings as a full
re-run over the same period, also when rows arrive out of order (a failure after its success)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.correlation import rules as R
from dashboard.correlation.engine import Correlator
from dashboard.correlation.rerun import rerun
from dashboard.models.correlation import Finding
from dashboard.numlog.service import import_csv
from tests.dashboard.correlation import world as W

ROW_RULES = set(R.NUMBER_RULES) | {R.PRINT_AFTER_ACCESS, R.PRINT_WITHOUT_ACCESS}


def test_row_by_row_equals_rerun(db: sessionmaker[Session]) -> None:
    w = W.build()
    days = W.workdays()
    lo, hi = W.L(days[5], 0), W.L(days[9], 0)  # d2 (USB, log-ins) .. d3 (print, numbers)
    w.events = [e for e in w.events if e.node != "lab1"]
    with db() as s:
        W.setup_people(s)
        W.ingest(s, w, Correlator(bulk_threshold=10**9))
    rows = [r for r in w.rows if lo <= W.ZONE_parse(r[2]) < hi]
    # out of order: P10's first failure arrives after its success, in a later import
    late = [r for r in rows if r[6] == "op-P10" and r[7] == "失敗"][:1]
    rows = [r for r in rows if r not in late] + late
    c = Correlator(bulk_threshold=10**9)  # force the per-row path
    with db() as s:
        for i in range(0, len(rows), 40):
            part = W.World(rows=rows[i : i + 40])
            import_csv(s, W.csv_bytes(part), source="cells", now=W.NOW, zone=W.ZONE,
                       correlator=c, filename=f"part{i}.csv")
            s.commit()
        got = {f.dedupe_key for f in s.scalars(select(Finding).where(
            Finding.withdrawn.is_(False), Finding.rule.in_(ROW_RULES)))}
        full = rerun(s, lo, hi + timedelta(days=0), W.NOW, store=False)
    want = {f.key for f in full.findings if f.rule in ROW_RULES}
    assert got == want
    rules = {k.split(":")[0] for k in got}
    assert {R.FAILED_LOGINS, R.USB_NEAR_ACCESS, R.PRINT_WITHOUT_ACCESS, R.NUMBER_IN_LOG,
            R.UNKNOWN_OPERATOR} <= rules
