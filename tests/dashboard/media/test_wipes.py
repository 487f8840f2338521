"""Periodic erasure of numbered media: an interval per media type or per medium (by the forms,
audited), the due date on the ledger and the medium's page, and the review item the periodic
check raises once a wipe is overdue (once, not again on every tick); a wipe moves the due date."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from dashboard.correlation.engine import Correlator
from dashboard.media.wipes import RULE, dues
from dashboard.models.anomalies import Anomaly
from dashboard.models.audit import AuditRecord
from dashboard.models.media import Medium
from tests.dashboard.media.conftest import NOW, register_form
from tests.dashboard.web.conftest import WebApp


def _tick(w: WebApp, days: float) -> list[str]:
    with w.sm() as s:
        res = Correlator().tick(s, NOW + timedelta(days=days), [])
        s.commit()
        return [k for k in res.new if k.startswith(RULE)]


def wiped_at(s: Any, cn: str) -> Any:
    return s.get(Medium, cn).wiped_at


def test_wipe_interval_due_date_and_overdue_review_item(media_app: WebApp) -> None:
    cn = register_form(media_app)
    other = register_form(media_app, serial="4C530009990001")
    c, csrf = media_app.as_role("admin")
    r = c.post("/media/wipe-intervals", data={"csrf_token": csrf, "media_type": "USBメモリ",
                                              "interval_days": "30"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    r = c.post(f"/media/{other}/wipe-interval", data={"csrf_token": csrf,
                                                      "interval_days": "90"},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    assert c.post(f"/media/{other}/wipe-interval", data={
        "csrf_token": csrf, "interval_days": "-3"}).status_code == 422
    with media_app.sm() as s:
        due = {d.control_number: d for d in dues(s)}
        assert due[cn].interval_days == 30 and due[other].interval_days == 90
        assert due[cn].due - NOW <= timedelta(days=30)
        assert s.query(AuditRecord).filter(AuditRecord.action.in_(
            ("media.wipe_interval", "medium.wipe_interval"))).count() == 2
    page = c.get("/media").text
    assert "定期消去の期限" in page and "消去期限超過" not in page
    assert _tick(media_app, 0) == []
    with media_app.sm.begin() as s:  # the medium was registered (never wiped) 31 days ago
        s.get(Medium, cn).registered_at = NOW - timedelta(days=31)
    late = _tick(media_app, 0)
    assert len(late) == 1 and cn in late[0]  # the per-type interval; the other is not due
    assert _tick(media_app, 0.5) == []  # raised once
    with media_app.sm() as s:
        a = s.scalars(select(Anomaly).where(Anomaly.kind == f"corr.{RULE}")).one()
        assert a.severity == "warning" and cn in a.subject
    assert "消去期限超過" in c.get("/media").text
    assert "消去期限超過" in c.get(f"/media/{cn}").text
    r = c.post(f"/media/{cn}/wipe", follow_redirects=False, data={
        "csrf_token": csrf, "method": "Clear", "technique": "上書き", "tool": "nwipe 0.34",
        "verifier": "山田 太郎", "verification": "読み出し確認"})
    assert r.status_code == 303, r.text
    with media_app.sm() as s:
        wiped = {d.control_number: d for d in dues(s)}[cn]
        assert wiped.due == wiped_at(s, cn) + timedelta(days=30)  # 30 days from the wipe
    assert "消去期限超過" not in c.get(f"/media/{cn}").text
