"""The units in hardware/systemd/: systemd itself scores their sandbox
(`systemd-analyze security --offline=true`), no worse than hardware/SYSTEMD.md states; the
nodes are Type=notify with a watchdog; every unit verifies."""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

import pytest

from tests.support import require_binary

HARDWARE = Path(__file__).resolve().parents[2] / "hardware"
UNITS = HARDWARE / "systemd"
NODES = ("secroom-gateway.service", "secroom-usb-agent.service")


def stated_scores() -> dict[str, float]:
    rows = re.findall(r"^\| (secroom-[a-z-]+\.service) \| [^|]+ \| \*\*([0-9.]+) OK\*\* \|",
                      (HARDWARE / "SYSTEMD.md").read_text(), flags=re.M)
    return {unit: float(score) for unit, score in rows}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / name).read_text())
    return parser


def test_every_service_has_a_stated_score() -> None:
    assert sorted(stated_scores()) == sorted(p.name for p in UNITS.glob("*.service"))


@pytest.mark.parametrize("name", sorted(stated_scores()))
def test_sandbox_score_is_no_worse_than_stated(name: str) -> None:
    analyze = require_binary("systemd-analyze")
    done = subprocess.run([analyze, "security", "--offline=true", "--no-pager", name],
                          cwd=UNITS, capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= stated_scores()[name]
    verify = subprocess.run([analyze, "verify", f"./{name}"], cwd=UNITS, capture_output=True,
                            text=True, timeout=120, check=False)
    problems = [line for line in verify.stderr.splitlines()
                if line and "is not executable" not in line]  # /opt/secroom is not here
    assert not problems, problems


@pytest.mark.parametrize("name", NODES)
def test_nodes_notify_and_are_watched(name: str) -> None:
    service = unit(name)["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["WatchdogSec"] == "30s" and service["Restart"] == "always"
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
