"""Every kind, denial reason, severity, rule, role and status the code can produce has a label in
Japanese and in English (dashboard/labels). The values are enumerated from the code itself:
the nodes' registry when it exists, the literals of the payload models, the anomaly kinds the
ingest and the dashboard raise (read from their source), the correlation's rules, the roles,
and the states the models allow."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, get_args

import pytest

from dashboard import labels
from dashboard.labels import kinds as kind_labels

ROOT = Path(__file__).resolve().parents[2]


def _emitted_kinds() -> set[str]:
    """Kinds the nodes emit: the registry (controller.events.KINDS) when this checkout has it,
    and every literal or constant kind passed to ``emit(...)`` in the node packages."""
    found: set[str] = set()
    reg = kind_labels._registry()
    if reg is not None:
        found |= set(reg.KINDS)
    consts: dict[str, str] = {}
    calls: list[ast.expr] = []
    for pkg in ("controller", "usb_guard", "backup", "readers"):
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                        and isinstance(node.value.value, str):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            consts[target.id] = node.value.value
                name = getattr(node, "func", None)
                name = getattr(name, "attr", None) or getattr(name, "id", None) or ""
                if isinstance(node, ast.Call) and node.args and name.endswith("emit"):
                    calls.append(node.args[0])
    for arg in calls:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            found.add(arg.value)
        elif isinstance(arg, ast.Name) and arg.id in consts:
            found.add(consts[arg.id])
        elif isinstance(arg, ast.Attribute) and arg.attr in consts:
            found.add(consts[arg.attr])
    found.add("door.access")  # emitted through the access decision's event builder
    return {k for k in found if re.fullmatch(r"[a-z_]+\.[a-z_]+", k)}


def _literal(annotation: Any) -> set[str]:
    return {str(a) for a in get_args(annotation)}


def _door_reasons() -> set[str]:
    try:
        from controller.events import DenialReason  # type: ignore[attr-defined]
    except ImportError:
        from controller.door_events import DenialReason
    return _literal(DenialReason) | kind_labels.all_reasons("door") - set(kind_labels.DOOR_REASONS)


def _print_reasons() -> set[str]:
    from controller.printing.events import DenialReason

    return _literal(DenialReason)


def _raised_kinds() -> set[str]:
    """Anomaly kinds raised in the dashboard: ``pending.add("kind", ...)`` in the ingest,
    ``raise_anomaly(session, "kind" | KIND, ...)`` anywhere, and corr.<rule> for every rule."""
    from dashboard.correlation.rules import RULES

    found = {f"corr.{r}" for r in RULES}
    for path in (ROOT / "dashboard").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        consts = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                  and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                  for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            arg = None
            if name == "add" and getattr(node.func, "value", None) is not None and \
                    getattr(node.func.value, "id", "") == "pending" and node.args:
                arg = node.args[0]
            elif name == "raise_anomaly" and len(node.args) >= 2:
                arg = node.args[1]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in consts:
                found.add(consts[arg.id])
    found.discard("")
    return {k for k in found if not k.startswith("corr.") or k[5:] in RULES}


def _roles() -> set[str]:
    from dashboard.auth.roles import Role

    return {r.value for r in Role}


def _states() -> dict[str, set[str]]:
    from dashboard.backups.queries import NightStatus
    from dashboard.media.i18n import STATES as MEDIA_STATES
    from dashboard.models.anomalies import ANOMALY_STATES
    from usb_guard.ledger import TRANSITIONS

    return {
        "review_state": set(ANOMALY_STATES),
        "media_state": set(MEDIA_STATES),
        "media_action": set(TRANSITIONS) | {"register"},
        "backup_status": _literal(NightStatus) - {"future"},
        "node_state": {"online", "offline", "unknown"},
        "key_status": {"approved", "pending", "revoked"},
        "clock": {"synced", "unsynced"},
        "direction": {"in", "out"},
        "result": {"granted", "denied"},
    }


def _severities() -> set[str]:
    from dashboard.anomalies import SEVERITIES
    from dashboard.correlation.types import SEVERITIES as RULE_SEVERITIES

    return set(SEVERITIES) | set(RULE_SEVERITIES)


def _missing(group: str, values: set[str]) -> list[str]:
    out = []
    for value in sorted(values):
        pair = labels.pair(group, value)
        if pair is None or not pair[0].strip() or not pair[1].strip():
            out.append(value)
        elif pair[0] == value or not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", pair[0]):
            out.append(f"{value} (ja label is not Japanese: {pair[0]!r})")
    return out


CASES = {
    "kind": _emitted_kinds,
    "door_reason": _door_reasons,
    "print_reason": _print_reasons,
    "review_kind": _raised_kinds,
    "severity": _severities,
    "role": _roles,
    "rule": lambda: {r for r in __import__("dashboard.correlation.rules",
                                             fromlist=["RULES"]).RULES},
    "card_type": lambda: set(__import__("dashboard.services.cards",
                                        fromlist=["CREDENTIALS"]).CREDENTIALS),
}


@pytest.mark.parametrize("group", sorted(CASES))
def test_every_value_the_code_produces_has_a_ja_and_an_en_label(group: str) -> None:
    values = CASES[group]()
    assert len(values) >= 2, f"found too few {group} values in the code: {values}"
    assert _missing(group, values) == []


@pytest.mark.parametrize("group", ["review_state", "media_state", "media_action",
                                   "backup_status", "node_state", "key_status", "clock",
                                   "direction", "result"])
def test_every_status_has_a_ja_and_an_en_label(group: str) -> None:
    assert _missing(group, _states()[group]) == []


def test_every_rule_has_an_explanation_in_both_languages() -> None:
    from dashboard.correlation.rules import RULES

    for rule in RULES:
        assert labels.rule_explanation(rule, "ja") and labels.rule_explanation(rule, "en"), rule


def test_the_enumeration_finds_what_it_should() -> None:
    """The scanners are not vacuous: they find kinds and anomalies known to be emitted."""
    assert {"door.access", "door.forced", "usb.inserted", "backup.snapshot"} <= _emitted_kinds()
    assert {"gap", "bad_signature", "media_overdue", "corr.access_not_in_room",
            "numlog.number_found"} <= _raised_kinds()


def test_a_value_without_a_label_is_caught() -> None:
    assert _missing("review_kind", {"corr.access_not_in_room", "made_up_kind"}) == \
        ["made_up_kind"]


def _audit_actions_in_code() -> dict[str, str]:
    """Every action literal passed to an audit-writing call in dashboard/, with its file."""
    import dashboard

    writers = {"append_audit", "audit", "rights_changed", "_audited"}
    dotted = re.compile(r"^[a-z_]+\.[a-z_]+$")
    found: dict[str, str] = {}
    root = Path(dashboard.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in writers:
                continue
            values = [*node.args, *(k.value for k in node.keywords if k.arg == "action")]
            for v in values:
                for c in ast.walk(v):  # also both sides of "a" if x else "b"
                    if isinstance(c, ast.Constant) and isinstance(c.value, str) \
                            and dotted.match(c.value):
                        found[c.value] = str(path.relative_to(root))
    return found


def test_every_audited_action_has_a_label_in_both_languages() -> None:
    """The audit page names what was done; an action written without a label shows as a raw
    dotted id (the crawl found client.save, node.roles... that way)."""
    from dashboard.labels.states import AUDIT_ACTIONS

    found = _audit_actions_in_code()
    assert len(found) >= 30  # the scan sees the calls
    missing = {a: f for a, f in found.items() if a not in AUDIT_ACTIONS}
    assert not missing, missing
    assert all(ja and en and ja != en for ja, en in AUDIT_ACTIONS.values())
