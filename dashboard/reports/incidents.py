"""An admin's classification of a review item: an incident (漏えい等事案) or not. Section 4 of
the monthly report (情報漏えいの発生の有無) counts only what is classified as an incident."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from dashboard.audit import append_audit
from dashboard.models.anomalies import Anomaly
from dashboard.models.reports import IncidentClassification
from dashboard.reports.collect import reviews
from dashboard.reports.data import MonthData, ReportError, ReviewRow, month_bounds
from dashboard.reports.guard import has_number
from dashboard.reports.names import Names


def classify(session: Session, anomaly_id: int, incident: bool, note: str, *, actor: str,
             now: datetime) -> IncidentClassification:
    if session.get(Anomaly, anomaly_id) is None:
        raise ReportError(f"no review item {anomaly_id}")
    note = note.strip()
    if len(note) > 1000 or has_number(note):
        raise ReportError("note: at most 1000 characters, no individual number")
    if incident and not note:
        raise ReportError("note: say what happened when classifying an incident")
    row = session.get(IncidentClassification, anomaly_id)
    before = None if row is None else {"incident": row.incident, "note": row.note}
    if row is None:
        row = IncidentClassification(anomaly_id=anomaly_id)
        session.add(row)
    row.incident, row.note, row.classified_by, row.classified_at = incident, note, actor, now
    session.flush()
    append_audit(session, actor=actor, action="review.classify", target_type="anomaly",
                 target_id=str(anomaly_id), before=before,
                 after={"incident": incident, "note": note}, now=now)
    return row


def month_reviews(session: Session, month: str, zone: ZoneInfo) -> list[ReviewRow]:
    """The review items of a month (all clients), as the reports list them."""
    since, until = month_bounds(month, zone)
    d = MonthData(month=month, client=None, since=since, until=until, zone=zone)
    return reviews(session, d, Names(session), [], True)
