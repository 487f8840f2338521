"""Log-in rows of the same second: the rules order them by (time, line, key), not by arrival.
Three failures that arrive (a later import) after the success they precede in that order make a
"failed log-ins, then success" finding, on the per-row path and in a re-run alike (the re-run
streams rows by (person, time, id) and must allow for the tie)."""

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


def test_failures_of_the_same_second_arriving_later(db: sessionmaker[Session]) -> None:
    day = W.workdays()[4]
    at = W.L(day, 10, 30, 15)
    first = W.World()
    for m in range(4):  # the success is line 5 of its file
        first.row("P40", W.L(day, 11, m), "マイナンバー閲覧", "閲覧")
    first.row("P41", at, "ログイン認証", "成功", screen="一覧入力")
    later = W.World()  # the failures are lines 1-3 of theirs, so they come first
    for _ in range(3):
        later.row("P41", at, "ログイン認証", "失敗", screen="一覧入力")
    c = Correlator(bulk_threshold=10**9)
    with db() as s:
        W.setup_people(s)
        for n, part in enumerate((first, later)):
            import_csv(
                s,
                W.csv_bytes(part),
                source="cells",
                now=W.NOW,
                zone=W.ZONE,
                correlator=c,
                filename=f"part{n}.csv",
            )
            s.commit()
        got = {
            f.dedupe_key
            for f in s.scalars(
                select(Finding).where(Finding.rule == R.FAILED_LOGINS, Finding.withdrawn.is_(False))
            )
        }
        full = rerun(s, W.L(day, 0), W.L(day + timedelta(days=1), 0), W.NOW, store=False)
    want = {f.key for f in full.findings if f.rule == R.FAILED_LOGINS}
    assert len(got) == 1 and got == want
    (f,) = [f for f in full.findings if f.rule == R.FAILED_LOGINS]
    assert f.person_id == "P41" and len(f.evidence["failures"]) == 3
