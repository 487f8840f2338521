"""The report's media section and the overdue rule read the dashboard's media ledger."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from dashboard.correlation import rules as R
from dashboard.correlation.engine import Correlator
from dashboard.correlation.sources import loans
from dashboard.models.media import Medium, MediumRecord
from dashboard.reports.monthly import issue
from tests.dashboard.reports.test_monthly import pdf_text

ZONE = ZoneInfo("Asia/Tokyo")
T = datetime(2026, 10, 5, 1, 0, tzinfo=UTC)


def _medium(cn: str) -> Medium:
    return Medium(control_number=cn, vendor_id="0781", product_id="5567", token_digest="0" * 64,
                  media_type="USB", make="m", model="m", state="in_storage", custodian="c",
                  registered_at=T, registered_by="a", updated_at=T)


def test_media_section_and_overdue_from_the_ledger(db: sessionmaker[Session],
                                                  tmp_path: Path) -> None:
    with db() as s:
        for cn in ("USB-0001", "USB-0002"):
            s.add(_medium(cn))
        s.flush()
        rec = [("USB-0001", "check_out", T, T + timedelta(days=1)),
               ("USB-0001", "return", T + timedelta(hours=5), None),
               ("USB-0001", "wipe", T + timedelta(hours=6), None),
               ("USB-0002", "check_out", T, T + timedelta(days=2))]
        for cn, action, at, due in rec:
            s.add(MediumRecord(control_number=cn, action=action, to_state="x", actor="admin1",
                               at=at, holder="P01", due_back=due, details={}))
        s.commit()
        got = loans(s)
        assert {(x.control_number, x.returned_at is None) for x in got} == {
            ("USB-0001", False), ("USB-0002", True)}
        res = Correlator().tick(s, T + timedelta(days=3), got, lookback=timedelta(days=4))
        assert [k for k in res.new if k.startswith(R.MEDIA_OVERDUE)] == [
            R.key(R.MEDIA_OVERDUE, "USB-0002", (T + timedelta(days=2)).isoformat())]
        out = issue(s, month="2026-10", client_id=None, lang="ja", zone=ZONE,
                    now=T + timedelta(days=3))
    t = pdf_text(out.content, tmp_path)
    assert "媒体の持出し 2 件・返却 1 件・消去 1 件・廃棄 0 件" in t
    assert re.search(r"別紙5 媒体の持出し・返却・消去・廃棄 .*USB-0002 持出し", t)
