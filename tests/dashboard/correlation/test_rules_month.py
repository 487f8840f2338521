"""Every rule fires on its planted case and stays silent on its near-miss, over a generated month
(50 staff, their PCs, door gateway, printer, USB agent, nightly backups, the number system's CSV);
the incremental path and a full re-run over the month give the same findings."""

from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import select

from dashboard.correlation import host_rules as HR
from dashboard.correlation import rules as R
from dashboard.correlation.rerun import rerun
from dashboard.models.anomalies import Anomaly
from dashboard.models.correlation import Finding
from tests.dashboard.correlation import world as W
from tests.dashboard.correlation.conftest import Month

MONTH_START = W.L(date(2026, 10, 1), 0)
MONTH_END = W.L(date(2026, 11, 1), 0)


def _active(m: Month) -> list[Finding]:
    with m.sm() as s:
        return list(s.scalars(select(Finding).where(Finding.withdrawn.is_(False))))


def _pairs(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.rule, W.subject_of(f)) for f in findings}


def test_every_planted_case_fires(month: Month) -> None:
    pairs = _pairs(_active(month))
    missing = month.world.planted - pairs
    assert not missing, f"rules that did not fire: {sorted(missing)}"
    assert {r for r, _ in month.world.planted} | {R.PRINT_AFTER_ACCESS} == set(R.RULES)


def test_near_misses_stay_silent(month: Month) -> None:
    pairs = _pairs(_active(month))
    assert not (month.world.near_miss & pairs)


def test_nothing_else_fires(month: Month) -> None:
    """Apart from output records (info), only the planted cases are findings."""
    alarms = [f for f in _active(month) if f.severity != "info"]
    assert _pairs(alarms) == month.world.planted
    outputs = Counter(f.rule for f in _active(month) if f.severity == "info")
    assert outputs == {R.PRINT_AFTER_ACCESS: 1}  # P09's print after an access


def test_each_alarm_is_one_anomaly_with_the_evidence(month: Month) -> None:
    with month.sm() as s:
        findings = [f for f in _active(month) if f.severity != "info"]
        for f in findings:
            a = s.get(Anomaly, f.anomaly_id)
            assert a is not None and a.kind == "corr." + f.rule and a.severity == f.severity
            assert a.detail["en"] == f.explanation_en and a.detail["ja"] == f.explanation_ja
        live = [a for a in s.scalars(select(Anomaly).where(Anomaly.state != "resolved"))
                if a.kind.startswith("corr.")]
        assert sorted(a.id for a in live) == sorted(f.anomaly_id for f in findings)
        # P09's print came before the CSV: first "without access", withdrawn once the rows
        # arrived, its anomaly resolved by the correlation (audited) with the reason
        gone = s.scalars(select(Finding).where(Finding.withdrawn.is_(True))).all()
        # and P43's number-data file read likewise, once the number system's rows came
        assert sorted((f.rule, f.person_id) for f in gone) == [
            (HR.PC_FILES_WITHOUT_ACCESS, "P43"), (R.PRINT_WITHOUT_ACCESS, "P09")]
        a = s.get(Anomaly, gone[0].anomaly_id)
        assert a is not None and a.state == "resolved" and a.reason.startswith("withdrawn")


def test_explanations_show_joined_evidence(month: Month) -> None:
    by_rule = {f.rule: f for f in _active(month)}
    usb = by_rule[R.USB_NEAR_ACCESS]
    assert "pc-P06" in usb.explanation_en and "usbagent:" in usb.explanation_en
    assert "14:10:00" in usb.explanation_en and "USB ストレージ" in usb.explanation_ja
    away = by_rule[R.NOT_IN_ROOM]
    assert "last left" in away.explanation_en and "12:00:00" in away.explanation_en
    logins = by_rule[R.FAILED_LOGINS]
    assert "3 times" in logins.explanation_en and len(logins.evidence["failures"]) == 3
    forced = by_rule[R.DOOR_FORCED]
    assert "present: -" in forced.explanation_en  # 03:00, nobody inside
    assert "holiday" in [f for f in _active(month) if f.rule == R.OUTSIDE_HOURS
                         and f.person_id == "P05"][0].evidence["why"]


def test_full_rerun_gives_the_same_findings_and_changes_nothing(month: Month) -> None:
    before = {f.dedupe_key for f in _active(month)}
    with month.sm() as s:
        res = rerun(s, MONTH_START, MONTH_END, W.NOW, loans=month.world.loans, store=False)
    assert {f.key for f in res.findings} == before
    assert res.rows == len(month.world.rows) - 0  # every stored row of the month was read
    with month.sm() as s:
        n_anomalies = s.query(Anomaly).count()
        res = rerun(s, MONTH_START, MONTH_END, W.NOW, loans=month.world.loans)
        s.commit()
        assert res.persisted is not None and not res.persisted.new
        assert not res.persisted.withdrawn and s.query(Anomaly).count() == n_anomalies


def test_rerun_over_part_of_the_month_gives_that_part(month: Month) -> None:
    lo, hi = W.L(date(2026, 10, 10), 0), W.L(date(2026, 10, 20), 0)
    with month.sm() as s:
        res = rerun(s, lo, hi, W.NOW, store=False)
    part = {f.dedupe_key for f in _active(month) if lo <= f.at < hi
            and f.rule not in (R.UNKNOWN_OPERATOR, R.MEDIA_OVERDUE)}
    assert {f.key for f in res.findings if f.rule != R.UNKNOWN_OPERATOR} == part
