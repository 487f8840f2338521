"""The event registry: every kind any package emits is in ``KINDS`` with its model, the node
roles that may emit it and its labels; every denial reason has its labels."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import typing
from pathlib import Path
from types import ModuleType, UnionType

import pytest
from pydantic import BaseModel

import backup.events
import controller.events
import controller.host.events
import controller.printing.events
import usb_guard.events
from controller.events import (
    DOOR_DENIAL_LABELS,
    KINDS,
    NODE_ROLES,
    PRINT_DENIAL_LABELS,
    DoorAccess,
    DoorRex,
    Label,
    may_emit,
    payload_error,
)
from controller.journal import KIND_RE
from controller.printing.events import PrintDeniedPayload

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("controller", "readers", "usb_guard", "backup", "dashboard")
EVENT_MODULES = (controller.events, controller.printing.events, backup.events, usb_guard.events,
                 controller.host.events)
KIND_SHAPE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")


def _models_in(annotation: object) -> set[type[BaseModel]]:
    """The models an annotation names (list[ReleasedJob], X | None, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {annotation}
    return {m for arg in typing.get_args(annotation) for m in _models_in(arg)}


def _literal_values(annotation: object) -> set[str]:
    if typing.get_origin(annotation) is typing.Literal:
        return {str(v) for v in typing.get_args(annotation)}
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        return {v for arg in typing.get_args(annotation) for v in _literal_values(arg)}
    return set()


def _module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _constant(module: str, name: str) -> object:
    return getattr(importlib.import_module(module), name)


def _builds_a_model(node: ast.expr) -> bool:
    """``Model(...)`` or ``module.Model(...)``: a call of a capitalised name."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name[:1].isupper()


def _emitted_kinds() -> dict[str, str]:
    """Every kind named in the source where an event is made: the first argument of a call to
    ``emit``/``_emit``/``_emit_quiet`` (a string, or a module constant such as PRINT_RELEASE),
    and ``(kind, Model(...))`` pairs (access_events, emit_many). kind -> first place found."""
    found: dict[str, str] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            module = _module_of(path)
            for node in ast.walk(tree):
                first: ast.expr | None = None
                if isinstance(node, ast.Call) and node.args:
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    if name in ("emit", "_emit", "_emit_quiet"):
                        first = node.args[0]
                elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
                    head, tail = node.elts
                    if (isinstance(head, ast.Constant) and isinstance(head.value, str)
                            and KIND_SHAPE.match(head.value) and _builds_a_model(tail)):
                        first = head
                kind: object = None
                if isinstance(first, ast.Constant):
                    kind = first.value
                elif isinstance(first, ast.Name) and first.id.isupper():
                    kind = _constant(module, first.id)
                elif isinstance(first, ast.Attribute) and first.attr.isupper():
                    kind = None  # module.CONSTANT: resolved below
                    owner = first.value
                    if isinstance(owner, ast.Name):
                        target = getattr(importlib.import_module(module), owner.id, None)
                        if isinstance(target, ModuleType):
                            kind = getattr(target, first.attr)
                if isinstance(kind, str):
                    found.setdefault(kind, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_kind_emitted_anywhere_is_registered() -> None:
    emitted = _emitted_kinds()
    # the scan sees each family of emitters (a scan that finds nothing would prove nothing)
    for kind in ("door.access", "door.rex", "policy.applied", "node.started", "reader.connected",
                 "print.release", "print.denied", "usb.inserted", "backup.snapshot"):
        assert kind in emitted, f"the source scan missed {kind}"
    missing = {kind: where for kind, where in emitted.items() if kind not in KINDS}
    assert not missing, f"kinds emitted without a KINDS entry: {missing}"


def test_every_payload_model_of_the_event_modules_is_registered() -> None:
    """A model added to an event module without a KINDS entry (or nested in one) fails."""
    registered = {spec.model for spec in KINDS.values()}
    nested = {m for model in registered for f in model.model_fields.values()
              for m in _models_in(f.annotation)}
    for module in EVENT_MODULES:
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ ==
                    module.__name__ and not name.startswith("_")):
                assert obj in registered | nested, f"{module.__name__}.{name} is not registered"


def test_registry_entries_are_well_formed() -> None:
    for kind, spec in KINDS.items():
        assert KIND_RE.match(kind) and len(kind) <= 64, kind
        assert spec.model.model_config.get("extra") == "forbid", kind
        assert spec.roles and spec.roles <= NODE_ROLES, kind
    # one model per kind: the runtime's type check tells the kinds apart
    models = [spec.model for spec in KINDS.values()]
    assert len(set(models)) == len(models)


def test_kinds_follow_the_node_roles() -> None:
    area_roles = {
        "door": {"door_gateway"},
        "reader": {"door_gateway", "print_station"},
        "camera": {"door_gateway", "print_station"},  # the stills of doors, racks, printers
        "card": {"door_gateway"},  # personalised and re-keyed at a door reader
        "print": {"print_station"},
        "usb": {"host_agent"},
        "host": {"host_agent"},
        "backup": {"backup_job"},
        "node": set(NODE_ROLES),
        "policy": set(NODE_ROLES),
    }
    for kind, spec in KINDS.items():
        assert spec.roles == area_roles[kind.split(".")[0]], kind
    assert {"door_gateway", "print_station", "host_agent", "backup_job"} == NODE_ROLES


def test_may_emit_answers_for_a_set_of_roles() -> None:
    gw1 = {"door_gateway", "print_station"}  # the demo's gateway runs doors, rack and printer
    assert may_emit("door.access", gw1) and may_emit("print.release", gw1)
    assert may_emit("reader.read_failed", ["print_station"])
    assert not may_emit("usb.inserted", gw1)
    assert may_emit("usb.inserted", {"host_agent"}) and not may_emit("door.access", {"host_agent"})
    assert may_emit("host.logon", {"host_agent"}) and not may_emit("host.logon", gw1)
    assert may_emit("backup.failed", ("backup_job",))
    for role in NODE_ROLES:
        assert may_emit("node.clock", {role}) and may_emit("policy.rejected", {role})
    assert not may_emit("node.started", set())
    assert not may_emit("door.knock", gw1)  # not registered: nobody may


def test_payload_error_names_the_kind_and_the_model() -> None:
    rex = DoorRex(door="d1")
    assert payload_error("door.rex", rex) is None
    assert "not registered" in str(payload_error("door.knock", rex))
    assert payload_error("door.rex", {"door": "d1"}) == (
        "event data for door.rex must be a DoorRex model, not dict"
    )
    assert "must be a DoorAccess model, not DoorRex" in str(payload_error("door.access", rex))


def _check_label(label: Label, what: str) -> None:
    assert label.ja.strip() and label.en.strip(), what
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", label.ja), f"{what}: ja is not Japanese"
    assert label.en.isascii() and label.en[0].isupper(), what
    assert label.text("ja") == label.ja and label.text("en") == label.en


def test_every_kind_has_a_japanese_and_an_english_label() -> None:
    for kind, spec in KINDS.items():
        _check_label(spec.label, kind)
    assert KINDS["door.access"].label == Label("入退室", "Door access")


@pytest.mark.parametrize(
    ("model", "labels"),
    [(DoorAccess, DOOR_DENIAL_LABELS), (PrintDeniedPayload, PRINT_DENIAL_LABELS),
     (controller.host.events.HostLogon, controller.events.LOGON_DENIAL_LABELS),
     (controller.host.events.HostLocked, controller.events.SESSION_END_LABELS)],
)
def test_every_denial_reason_has_its_labels(
    model: type[BaseModel], labels: dict[str, Label]
) -> None:
    """Walks the model's ``reason`` Literal: a reason added without labels fails here."""
    reasons = _literal_values(model.model_fields["reason"].annotation)
    if model is controller.host.events.HostLocked:  # locks and log-offs share one table
        reasons |= _literal_values(
            controller.host.events.HostLogoff.model_fields["reason"].annotation)
    assert reasons and set(labels) == reasons
    for reason, label in labels.items():
        _check_label(label, reason)
    assert "printing_not_configured" in reasons or model is not PrintDeniedPayload
