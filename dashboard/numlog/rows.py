"""The imported number-access rows as a page: filters (operator by name or id, action, purpose,
result, client company, period), paging with counts, each row linked to the person's day and
to the review items it raised."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from dashboard.correlation.rules import NUMBER_RULES, key
from dashboard.models.correlation import Finding
from dashboard.models.numlog import NumberAccess
from dashboard.names import find_people

PAGE = 50
CAP = 100_000


@dataclass
class RowFilters:
    operator: str = ""
    action: str = ""
    purpose: str = ""
    result: str = ""  # "ok", "failed" or ""
    office: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1

    def args(self, **change: Any) -> dict[str, Any]:
        base = {"operator": self.operator, "action": self.action, "purpose": self.purpose,
                "result": self.result, "office": self.office,
                "since": self.since.isoformat() if self.since else "",
                "until": self.until.isoformat() if self.until else "", "page": self.page}
        base.update(change)
        return {k: v for k, v in base.items() if v not in ("", None)}


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def rows_filters(request: Request) -> RowFilters:
    q = request.query_params
    page = q.get("page", "1")
    return RowFilters(operator=q.get("operator", "")[:64], action=q.get("action", "")[:64],
                      purpose=q.get("purpose", "")[:64],
                      result=q.get("result", "") if q.get("result") in ("ok", "failed") else "",
                      office=q.get("office", "")[:64], since=_day(q.get("since", "")),
                      until=_day(q.get("until", "")), page=int(page) if page.isdigit() else 1)


def _where(db: Session, f: RowFilters, zone: ZoneInfo) -> list[Any]:
    c: list[Any] = []
    if f.operator:
        people = find_people(db, f.operator)
        c.append(or_(NumberAccess.operator == f.operator,
                     NumberAccess.person_id.in_(people or [""])))
    for column, text in ((NumberAccess.action, f.action), (NumberAccess.purpose, f.purpose),
                         (NumberAccess.office, f.office)):
        if text:
            c.append(column.contains(text, autoescape=True))
    if f.result:
        c.append(NumberAccess.ok.is_(f.result == "ok"))
    if f.since:
        c.append(NumberAccess.ts >= datetime.combine(f.since, datetime.min.time(), zone))
    if f.until:
        c.append(NumberAccess.ts < datetime.combine(f.until + timedelta(days=1),
                                                    datetime.min.time(), zone))
    return c


def rows_page(db: Session, f: RowFilters, zone: ZoneInfo, offices: Any = None) -> dict[str, Any]:
    """A page of rows; ``offices`` (a SELECT of 事業所名) keeps a client's rows only."""
    conds = _where(db, f, zone)
    if offices is not None:
        conds.append(NumberAccess.office.in_(offices))
    inner = select(NumberAccess.id).where(*conds).limit(CAP).subquery()
    total = int(db.scalar(select(func.count()).select_from(inner)) or 0)
    pages = max(1, -(-total // PAGE))
    page = min(max(1, f.page), pages)
    rows = list(db.scalars(select(NumberAccess).where(*conds)
                           .order_by(NumberAccess.ts.desc(), NumberAccess.id.desc())
                           .offset((page - 1) * PAGE).limit(PAGE)))
    keys = {key(rule, r.row_key): r.row_key for r in rows for rule in NUMBER_RULES}
    raised: dict[str, list[int]] = {}
    if keys:
        for k, anomaly_id in db.execute(select(Finding.dedupe_key, Finding.anomaly_id).where(
                Finding.dedupe_key.in_(list(keys)), Finding.anomaly_id.is_not(None))):
            raised.setdefault(keys[k], []).append(anomaly_id)
    return {"rows": rows, "raised": raised, "total": total, "page": page, "pages": pages,
            "first": (page - 1) * PAGE + 1 if total else 0, "last": min(page * PAGE, total),
            "capped": total >= CAP}
