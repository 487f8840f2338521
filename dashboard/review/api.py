"""The review item as the JSON API shows it: ids for programs, names and a sentence for
people (in the ``lang`` asked for)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from dashboard.i18n import Translator
from dashboard.labels import label
from dashboard.models.anomalies import Anomaly
from dashboard.names import Names
from dashboard.review.sentences import Evidence, sentence


class ItemOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    kind: str
    kind_label: str
    severity: str
    severity_label: str
    state: str
    state_label: str
    at: datetime | None
    sentence: str
    person_id: str | None
    person_name: str | None
    place: str | None
    place_name: str | None
    host: str | None
    node: str | None
    node_name: str | None
    count: int
    assignee: str | None
    escalated_at: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    reason: str | None
    resolved_at: datetime | None


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2000)
    assignee: str = Field(default="", max_length=64)


def item_out(a: Anomaly, ev: Evidence, t: Translator, n: Names) -> ItemOut:
    lang = t.lang
    return ItemOut(
        id=a.id, kind=a.kind, kind_label=label("review_kind", a.kind, lang),
        severity=a.severity, severity_label=label("severity", a.severity, lang),
        state=a.state, state_label=label("review_state", a.state, lang), at=a.at,
        sentence=sentence(a, ev, t, n), person_id=a.person_id,
        person_name=n.person(a.person_id) if a.person_id else None, place=a.place,
        place_name=n.place(a.place) if a.place else None, host=a.host, node=a.node,
        node_name=n.node(a.node) if a.node else None, count=a.count, assignee=a.assignee,
        escalated_at=a.escalated_at, first_seen_at=a.first_seen_at,
        last_seen_at=a.last_seen_at, acknowledged_at=a.acknowledged_at,
        acknowledged_by=a.acknowledged_by, reason=a.reason, resolved_at=a.resolved_at,
    )
