"""Every label the console shows for a value the code stores, in Japanese and English, in one
place: event kinds and denial reasons (read from the nodes' registry when it has them, see
``kinds``), review item kinds, rules, severities and states (``review``), roles and the other
statuses (``states``).

``label(group, key, lang)`` answers for any of them; a value without a label comes back as
itself, and ``tests/dashboard/test_labels.py`` fails for every such value the code can produce.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dashboard.labels import fields, kinds, review, states

Pair = tuple[str, str]

TABLES: dict[str, Mapping[str, Pair]] = {
    "severity": review.SEVERITIES,
    "review_state": review.REVIEW_STATES,
    "item_kind": review.ITEM_KINDS,
    "rule": {k: v[0] for k, v in review.RULES.items()},
    "role": states.ROLES,
    "node_state": states.NODE_STATES,
    "key_status": states.KEY_STATUSES,
    "clock": states.CLOCK_STATES,
    "direction": states.DIRECTIONS,
    "result": states.RESULTS,
    "media_state": states.MEDIA_STATES,
    "media_action": states.MEDIA_ACTIONS,
    "usb_verdict": states.USB_VERDICTS,
    "backup_status": states.BACKUP_STATUSES,
    "backup_stage": states.BACKUP_STAGES,
    "backup_error": states.BACKUP_ERRORS,
    "access_category": states.ACCESS_CATEGORIES,
    "audit_action": states.AUDIT_ACTIONS,
    "audit_target": states.AUDIT_TARGETS,
    "name_kind": states.NAME_KINDS,
    "audit_field": fields.AUDIT_FIELDS,
    "card_type": kinds.CARD_TYPES,
    "date_style": fields.DATE_STYLES,
}

# groups whose labels come from functions (the nodes' registry first)
LOOKUPS: dict[str, Callable[[str], Pair | None]] = {
    "kind": kinds.kind_pair,
    "door_reason": lambda r: kinds.reason_pair(r, "door"),
    "credential": kinds.CREDENTIALS.get,
    "print_reason": lambda r: kinds.reason_pair(r, "print"),
    "review_kind": review.item_kind_pair,
    "logon_reason": lambda r: kinds.registry_pair("LOGON_DENIAL_LABELS", r),
    "session_end": lambda r: kinds.registry_pair("SESSION_END_LABELS", r),
    "node_role": lambda r: kinds.registry_pair("ROLE_LABELS", r),
}


def pair(group: str, key: str) -> Pair | None:
    """(ja, en) for ``key`` in ``group``, or None when it has no label."""
    lookup = LOOKUPS.get(group)
    if lookup is not None:
        return lookup(key)
    table = TABLES.get(group)
    if table is None:
        raise KeyError(f"no label group {group!r}")
    return table.get(key)


def label(group: str, key: str | None, lang: str, default: str | None = None) -> str:
    """The label of ``key`` in ``lang`` (ja or en); ``default`` (or the key) when it has none."""
    if key is None or key == "":
        return default if default is not None else ""
    found = pair(group, key)
    if found is None:
        return default if default is not None else key
    return found[0] if lang == "ja" else found[1]


def rule_explanation(rule: str, lang: str) -> str:
    found = review.RULES.get(rule)
    if found is None:
        return ""
    return found[1][0] if lang == "ja" else found[1][1]


def review_kind(kind: str, lang: str) -> str:
    return label("review_kind", kind, lang)
