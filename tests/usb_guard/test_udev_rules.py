"""The shipped udev rules: well formed, and saying what the agent and the simulation assume.

udev skips a line it cannot parse (with a log message nobody reads), which would leave USB disks
visible before their check; so every line is parsed here, and the storage rule's paths and
properties are compared with the agent's defaults. The rule's behaviour itself is modelled by
``usb_guard.simulated_udev`` and exercised by tests/usb_guard/test_exposure.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from usb_guard.agent import HIDDEN
from usb_guard.config import UsbAgentConfig
from usb_guard.exposure import MARK_SUFFIX

RULES = Path(__file__).resolve().parents[2] / "hardware" / "udev"
STORAGE = RULES / "79-secroom-usb-storage.rules"
_PAIR = re.compile(r'\s*([A-Z_]+)(?:\{([A-Za-z0-9_]+)\})?\s*(==|!=|\+=|:=|=)\s*"([^"]*)"\s*')
MATCH_KEYS = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "ENV", "ATTR", "TEST"}
ASSIGN_KEYS = {"ENV", "ATTR", "RUN", "OWNER", "GROUP", "MODE", "GOTO", "LABEL"}


def parse(path: Path) -> list[list[tuple[str, str | None, str, str]]]:
    """Each rule line as (key, attribute, operator, value) tuples; AssertionError if malformed."""
    rules = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs, rest = [], line
        while rest:
            found = _PAIR.match(rest)
            assert found, f"{path.name}:{number}: cannot parse {rest!r}"
            key, attr, op, value = found.groups()
            if op in ("==", "!="):
                assert key in MATCH_KEYS, f"{path.name}:{number}: {key} is not a match key"
            else:
                assert key in ASSIGN_KEYS, f"{path.name}:{number}: {key} cannot be assigned"
            pairs.append((key, attr, op, value))
            rest = rest[found.end():]
            assert not rest or rest.startswith(","), f"{path.name}:{number}: missing comma"
            rest = rest[1:]
        rules.append(pairs)
    return rules


def test_every_shipped_rule_line_parses_and_every_goto_has_its_label() -> None:
    files = sorted(RULES.glob("*.rules"))
    assert STORAGE in files
    for path in files:
        rules = parse(path)
        labels = {v for rule in rules for k, _, _, v in rule if k == "LABEL"}
        gotos = {v for rule in rules for k, _, _, v in rule if k == "GOTO"}
        assert gotos <= labels, f"{path.name}: GOTO without LABEL: {gotos - labels}"


def test_storage_rule_hides_unmarked_usb_disks_the_way_the_agent_expects() -> None:
    rules = parse(STORAGE)
    marks = str(UsbAgentConfig(host="h").verified_path)
    assert marks == "/run/secroom/usb-verified"
    tests = {(attr_value(rule, "ENV", "DEVTYPE"), v) for rule in rules
             for k, _, op, v in rule if k == "TEST" and op == "=="}
    assert tests == {("disk", f"{marks}/$kernel{MARK_SUFFIX}"),
                     ("partition", f"{marks}/$parent{MARK_SUFFIX}")}
    runs = [v for rule in rules for k, _, _, v in rule if k == "RUN"]
    assert runs == [f"/bin/rm -f {marks}/$kernel{MARK_SUFFIX}"]
    hidden = {(attr, v) for rule in rules for k, attr, op, v in rule if k == "ENV" and op == "="}
    assert {("SECROOM_STORAGE", HIDDEN), ("UDISKS_IGNORE", "1"), ("UDISKS_AUTO", "0"),
            ("UDISKS_SYSTEM", "1"), ("SYSTEMD_READY", "0")} <= hidden
    assert ["SUBSYSTEMS", "usb"] in [[k, v] for rule in rules for k, _, op, v in rule
                                     if op == "=="]


def attr_value(rule: list[tuple[str, str | None, str, str]], key: str, attr: str) -> str | None:
    return next((v for k, a, op, v in rule if (k, a, op) == (key, attr, "==")), None)
