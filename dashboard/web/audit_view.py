"""An audit record as a person reads it: what was done to what (names, not ids), and which
fields changed from what to what, with labels and readable values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dashboard.i18n import Translator
from dashboard.labels import label
from dashboard.labels.fields import AUDIT_FIELDS, FREE_TEXT, HIDDEN
from dashboard.names import Names

PEOPLE_FIELDS = ("person_id", "custodian", "holder", "members", "responsible_person_id")
VALUE_LABELS = {"state": "media_state", "role": "role", "key_status": "key_status",
                "severity": "severity", "date_style": "date_style", "roles": "node_role",
                "credential": "card_type"}
MAX_CHANGES = 8


@dataclass(frozen=True)
class Change:
    field: str
    before: str
    after: str
    free_text: bool


def target_name(n: Names, target_type: str, target_id: str) -> str:
    if target_type == "person":
        return n.person(target_id)
    if target_type == "door":
        return n.door(target_id)
    if target_type == "printer":
        return n.printer(target_id)
    if target_type == "group":
        return n.group(target_id)
    if target_type == "node":
        return n.node(target_id)
    if target_type == "site":
        return n.site(target_id)
    if target_type == "client":
        return n.client(target_id)
    if target_type == "office" and target_id == "1":
        return ""  # the office's own details: one record
    if target_type == "name":
        kind, _, ident = target_id.partition(":")
        return n.of(kind, ident) if kind in ("reader", "host", "node", "site") else target_id
    return target_id


def _value(field: str, value: Any, t: Translator, n: Names, target_type: str) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return t("common.yes") if value else t("common.no")
    if isinstance(value, list):
        return "、".join(_value(field, v, t, n, target_type) for v in value)
    if isinstance(value, dict):
        days = value.get("days")
        if isinstance(days, list):
            span = f" {value.get('start')}–{value.get('end')}"
            return "".join(t(f"day.{d}") for d in days) + span
        return "…"
    if field in PEOPLE_FIELDS:
        return n.person(str(value))
    if field.endswith("_by"):
        who = n.user(str(value))
        return n.person(who) if who == value and value in n.people else who
    if field in ("doors", "lockdown_doors"):
        return n.door(str(value))
    if field == "printers":
        return n.printer(str(value))
    if field in ("groups", "access_groups"):
        return n.group(str(value))
    if field == "client_id":
        return n.client(value)
    if field == "site":
        return n.site(str(value))
    if field == "hosts":
        return n.host(str(value))
    if field == "state" and target_type == "anomaly":
        return label("review_state", str(value), t.lang)
    if field in VALUE_LABELS:
        return label(VALUE_LABELS[field], str(value), t.lang)
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-" and "T" in value:
        try:
            return t.time(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    return str(value)


def changes(before: Any, after: Any, target_type: str, t: Translator, n: Names) -> list[Change]:
    b = before if isinstance(before, dict) else {}
    a = after if isinstance(after, dict) else {}
    out = []
    for field in [k for k in (*a, *[k for k in b if k not in a]) if k not in HIDDEN]:
        old, new = b.get(field), a.get(field)
        if old == new or (not b and new in (None, "", [], False)):
            continue
        out.append(Change(label("audit_field", field, t.lang),
                          _value(field, old, t, n, target_type) if b else "",
                          _value(field, new, t, n, target_type) if a else "—",
                          field in FREE_TEXT))
    return out[:MAX_CHANGES]


__all__ = ["AUDIT_FIELDS", "Change", "changes", "target_name"]
