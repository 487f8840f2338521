"""A person's day (the person page's timeline): every source joined, drawn as the review items'
time strip, the day's review items about them, and the days before and after."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models.anomalies import Anomaly
from dashboard.review.evidence import strip
from dashboard.review.sentences import Evidence, sentence
from dashboard.web import deps


def day_context(request: Request, db: Session, person_id: str, start: datetime
                ) -> dict[str, Any]:
    end = start + timedelta(days=1)
    s = strip(db, start, end, person_id=person_id)
    items = list(db.scalars(select(Anomaly).where(
        Anomaly.person_id == person_id, Anomaly.at >= start, Anomaly.at < end)
        .order_by(Anomaly.at)))
    ev = Evidence.load(db, items)
    for f in ev.findings.values():
        for k in ("row", "print", "event"):
            if isinstance(f.evidence.get(k), str):
                s.trigger.add(f.evidence[k])
    if s.marks:  # draw the part of the day with records (with a margin), not 24 empty hours
        first = min(m.ts for m in s.marks)
        last = max(m.ts for m in s.marks)
        s.since = max(start, first.replace(minute=0, second=0, microsecond=0)
                      - timedelta(hours=1))
        s.until = min(end, last.replace(minute=0, second=0, microsecond=0)
                      + timedelta(hours=2))
    t, n = deps.translator(request), deps.names(request)
    return {
        "person_id": person_id, "day": start.date(), "strip": s,
        "prev_day": (start - timedelta(days=1)).date().isoformat(),
        "next_day": (start + timedelta(days=1)).date().isoformat(),
        "items": [(a, sentence(a, ev, t, n)) for a in items],
    }
