"""The review queue: one list of everything an admin reviews (the anomalies the ingest, the
dashboard and the correlation raise; a correlation finding is the evidence of its item), with
filters, counts, sorting and paging.

Storage stays as it is: every finding that needs review already raises exactly one anomaly
(``correlation.store``), so the anomalies table *is* the queue and ``correlation_findings``
holds the joined evidence of the items that came from a rule. Merging the tables would move
the correlation's idempotence (its dedupe keys, withdrawal) for no gain to the reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from dashboard.models.anomalies import Anomaly
from dashboard.names import Names, find_people, find_places

PAGE_SIZE = 50
STATES = ("open", "acknowledged", "resolved")
SEVERITY_ORDER = case({"critical": 0, "warning": 1, "info": 2}, value=Anomaly.severity, else_=3)
SORTS: dict[str, Any] = {
    "at": Anomaly.at,
    "severity": SEVERITY_ORDER,
    "kind": Anomaly.kind,
    "state": Anomaly.state,
    "last_seen": Anomaly.last_seen_at,
}
BACKUP_KINDS = ("corr.backup_missing", "corr.backup_failed")


@dataclass
class Filters:
    state: str = "open"  # open, acknowledged, resolved, unresolved, all
    severity: str = ""
    kind: str = ""
    person: str = ""  # a name or a staff number
    place: str = ""  # a door's or host's name
    since: datetime | None = None
    until: datetime | None = None
    assignee: str = ""
    sort: str = "at"
    desc: bool = True
    page: int = 1
    kinds: tuple[str, ...] = ()  # restrict to these kinds (e.g. the backup alarms)

    def query_args(self, **change: Any) -> dict[str, Any]:
        """This filter as query parameters (for links that change one thing)."""
        base = {"state": self.state, "severity": self.severity, "kind": self.kind,
                "person": self.person, "place": self.place, "assignee": self.assignee,
                "sort": self.sort, "desc": "1" if self.desc else "0", "page": self.page}
        base.update(change)
        return {k: v for k, v in base.items() if v not in ("", None)}


@dataclass
class QueuePage:
    items: list[Anomaly]
    total: int
    page: int
    pages: int
    by_state: dict[str, int] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def first(self) -> int:
        return 0 if not self.total else (self.page - 1) * PAGE_SIZE + 1

    @property
    def last(self) -> int:
        return min(self.page * PAGE_SIZE, self.total)


def _where(db: Session, names: Names, f: Filters, *, skip: str = "") -> list[Any]:
    conds: list[Any] = []
    if skip != "state":
        if f.state == "unresolved":
            conds.append(Anomaly.state != "resolved")
        elif f.state in STATES:
            conds.append(Anomaly.state == f.state)
    if f.severity and skip != "severity":
        conds.append(Anomaly.severity == f.severity)
    if f.kind and skip != "kind":
        conds.append(Anomaly.kind == f.kind)
    if f.kinds:
        conds.append(Anomaly.kind.in_(f.kinds))
    if f.person:
        conds.append(Anomaly.person_id.in_(find_people(db, f.person) or [""]))
    if f.place:
        places = find_places(names, f.place) or [""]
        conds.append(or_(Anomaly.place.in_(places), Anomaly.host.in_(places)))
    if f.since is not None:
        conds.append(Anomaly.at >= f.since)
    if f.until is not None:
        conds.append(Anomaly.at < f.until)
    if f.assignee:
        conds.append(Anomaly.assignee == f.assignee)
    return conds


def _counts(db: Session, column: Any, conds: list[Any]) -> dict[str, int]:
    q: Select[Any] = select(column, func.count()).where(*conds).group_by(column)
    return {str(k): int(n) for k, n in db.execute(q)}


def queue(db: Session, names: Names, f: Filters, page_size: int = PAGE_SIZE,
          scope: Any = None) -> QueuePage:
    """A page of the queue; ``scope`` (a WHERE clause, dashboard.auth.scope) keeps a site's
    account to its site's items, in the counts too."""
    extra = [] if scope is None else [scope]
    conds = [*_where(db, names, f), *extra]
    total = int(db.scalar(select(func.count()).select_from(Anomaly).where(*conds)) or 0)
    pages = max(1, -(-total // page_size))
    page = min(max(1, f.page), pages)
    key = SORTS.get(f.sort, Anomaly.at)
    order = [key.desc() if f.desc else key.asc(), Anomaly.id.desc() if f.desc else Anomaly.id]
    items = list(db.scalars(select(Anomaly).where(*conds).order_by(*order)
                            .offset((page - 1) * page_size).limit(page_size)))
    return QueuePage(
        items=items, total=total, page=page, pages=pages,
        by_state=_counts(db, Anomaly.state, [*_where(db, names, f, skip="state"), *extra]),
        by_severity=_counts(db, Anomaly.severity,
                            [*_where(db, names, f, skip="severity"), *extra]),
        by_kind=_counts(db, Anomaly.kind, [*_where(db, names, f, skip="kind"), *extra]),
    )


def weekly_by_severity(db: Session, since: datetime, zone: Any, scope: Any = None
                       ) -> dict[str, list[tuple[str, int]]]:
    """Items per site-local week (Monday) and severity since ``since``: for the queue's chart."""
    weeks: dict[str, dict[str, int]] = {}
    extra = [] if scope is None else [scope]
    for at, severity in db.execute(select(Anomaly.at, Anomaly.severity).where(
            Anomaly.at >= since, *extra)):
        if at is None:
            continue
        local = at.astimezone(zone).date()
        monday = local.fromordinal(local.toordinal() - local.weekday()).isoformat()
        weeks.setdefault(monday, {}).setdefault(severity, 0)
        weeks[monday][severity] += 1
    order = sorted(weeks)
    return {sev: [(w, weeks[w].get(sev, 0)) for w in order]
            for sev in ("critical", "warning", "info")}
