"""The re-run's presence filter by the controlled area's doors (bound as parameters, any
number of them) on both backends: the room among many doors changes nothing; a list without the
room leaves every known person's number access outside it."""

from __future__ import annotations

from datetime import date

from dashboard.correlation import rules as R
from dashboard.correlation.rerun import rerun
from dashboard.correlation.settings import CorrelationSettings
from tests.dashboard.correlation import world as W
from tests.dashboard.correlation.conftest import Month

LO, HI = W.L(date(2026, 10, 5), 0), W.L(date(2026, 10, 10), 0)


def test_room_doors_filter_presence(month: Month) -> None:
    many = CorrelationSettings(room_doors=tuple(f"side{i}" for i in range(12)) + ("room",))
    elsewhere = CorrelationSettings(room_doors=("side1", "side10"))
    with month.sm() as s:
        plain = {f.key for f in rerun(s, LO, HI, W.NOW, store=False).findings}
        assert {f.key for f in rerun(s, LO, HI, W.NOW, many, store=False).findings} == plain
        away = rerun(s, LO, HI, W.NOW, elsewhere, store=False)
    not_in_room = {f.evidence["row"] for f in away.findings if f.rule == R.NOT_IN_ROOM}
    rows = [r for r in month.world.rows if LO <= W.ZONE_parse(r[2]) < HI]
    known = [r for r in rows if r[6].startswith("op-P") and r[4] != "ログイン認証"]
    assert len(not_in_room) >= len(known) > 100
