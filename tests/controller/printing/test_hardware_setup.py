"""hardware/cups/setup-queues.sh and secroom-policy.conf, run against the private cupsd."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from controller.printing.cups_adapter import CupsAdapter
from tests.support import unavailable
from tests.support.cupsd import Cupsd

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[3] / "hardware/cups/setup-queues.sh"


def test_setup_script_creates_a_stopped_hold_queue_and_a_hidden_release_queue(
    cupsd: Cupsd,
) -> None:
    if os.geteuid() != 0:
        unavailable("the private cupsd needs root")
    env = cupsd.env() | {"CUPSD_CONF": str(cupsd.conf), "SECROOM_CUPS_USER": "root"}
    done = subprocess.run(
        ["sh", str(SCRIPT), "scripted", "file:///dev/null", "-P", str(cupsd.ppd)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    adapter = CupsAdapter(cupsd.host, cupsd.port, state_dir=cupsd.state)
    hold, release = adapter.queue_status("scripted"), adapter.queue_status("scripted-release")
    assert hold.stopped and hold.accepting
    assert not release.stopped and release.accepting
    staging = adapter.queue_status("scripted-staging")
    assert staging.stopped
    attrs = subprocess.run(
        ["lpoptions", "-h", cupsd.server, "-p", "scripted-release"],
        env=cupsd.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "printer-is-shared=false" in attrs
    listing = subprocess.run(
        ["lpstat", "-h", cupsd.server, "-l", "-p", "scripted"],
        env=cupsd.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "held until released by card" in listing
    printers = (cupsd.server_root / "printers.conf").read_text()
    for name in ("scripted", "scripted-release", "scripted-staging"):
        block = printers.split(f"<Printer {name}>", 1)[1].split("</Printer>", 1)[0]
        assert "OpPolicy secroom" in block
    for name in ("scripted-release", "scripted-staging"):
        block = printers.split(f"<Printer {name}>", 1)[1].split("</Printer>", 1)[0]
        assert "AllowUser root" in block and "Shared No" in block


def test_setup_script_refuses_without_the_policy(cupsd: Cupsd, tmp_path: Path) -> None:
    conf = tmp_path / "cupsd.conf"
    conf.write_text("Listen 127.0.0.1:631\n")
    done = subprocess.run(
        ["sh", str(SCRIPT), "x", "file:///dev/null", "-P", str(cupsd.ppd)],
        env=cupsd.env() | {"CUPSD_CONF": str(conf)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1 and "secroom-policy.conf" in done.stderr


def test_production_policy_refuses_unauthenticated_submission(cupsd: Cupsd, tmp_path: Path) -> None:
    """With secroom-policy.conf a job's owner is an authenticated name: a client that only
    claims to be alice (requesting-user-name) is refused."""
    if os.geteuid() != 0:
        unavailable("the private cupsd needs root")
    env = cupsd.env() | {"CUPSD_CONF": str(cupsd.conf), "SECROOM_CUPS_USER": "root"}
    subprocess.run(
        ["sh", str(SCRIPT), "authq", "file:///dev/null", "-P", str(cupsd.ppd)],
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    with pytest.raises(RuntimeError, match="Unauthorized|Forbidden|authentication"):
        cupsd.submit("alice", "authq", env={"CUPS_STATEDIR": str(tmp_path)})
