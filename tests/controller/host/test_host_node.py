"""The host agent as one node: card log-on events and the USB feature's events in one signed
journal under one key; ``secroom host audit-rules``."""

from __future__ import annotations

import threading
from typing import Any

from controller.cli import main
from controller.config import parse_config
from controller.host.pam_server import Caller, PamRequest
from controller.host_agent import HostNode
from controller.journal import verify_journal
from controller.keys import generate
from readers.fake import FakeReader
from tests.controller.host.test_agent import FakeLogind
from tests.controller.host.test_config import EXAMPLE
from tests.support import free_port
from usb_guard.simulated import SimulatedUsb, keyboard


def test_log_ons_and_usb_events_share_one_node_journal(tmp_path) -> None:
    sim = SimulatedUsb(tmp_path / "sys")
    key = generate(tmp_path / "node.key")
    generate(tmp_path / "dashboard.key")  # writes dashboard.key.pub
    config = parse_config({
        "node": {"name": "pc-01", "site": "hq", "data_dir": str(tmp_path / "data"),
                 "key_file": str(tmp_path / "node.key"), "clock": "synced"},
        "mqtt": {"port": free_port()},  # no broker: the journal keeps everything
        "policy": {"trusted_keys": [str(tmp_path / "dashboard.key.pub")]},
        "host": {"host": "pc-01", "socket": str(tmp_path / "agent.sock"),
                 "journal": {"enabled": False}, "audit": {"enabled": False}},
        "usb": {"host": "pc-01", "sysfs_root": str(sim.sysfs_root),
                "dev_root": str(sim.dev_root), "new_devices": "unchanged",
                "interface_control": False},
    }, base=tmp_path)
    node = HostNode(config, reader=FakeReader(), logind=FakeLogind(), usb_source=sim)
    seen: list[str] = []
    usb_seen = threading.Event()
    real_emit = node.runtime.emit

    def emit(kind: str, data: Any) -> Any:  # the real emit, watched
        seen.append(kind)
        if kind == "usb.inserted":
            usb_seen.set()
        return real_emit(kind, data)

    node.runtime.emit = emit  # type: ignore[method-assign]
    node.start()
    try:
        answer = node.agent.handle_pam(PamRequest(step="card", user="hana", service="login"),
                                       Caller(1, 0))
        assert (answer.ok, answer.reason) == (False, "no_policy")  # nothing signed yet
        sim.plug(keyboard())
        assert usb_seen.wait(30), (seen, node.errors)
    finally:
        node.stop()
    assert {"node.started", "host.logon", "usb.inserted"} <= set(seen)
    report = verify_journal(config.journal_path, key.public_key())
    assert report.ok and report.count >= len(seen)


def test_audit_rules_command_prints_the_watches(capsys) -> None:
    assert main(["host", "audit-rules", "--config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "-w /srv/mynumber -p rwxa -k secroom-number_data" in out
