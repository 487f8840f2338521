"""`secroom gateway run` as a real process: SIGKILLed mid-stream of taps and restarted, every
event reaches the broker exactly once by seq (wire duplicates dropped by seq), the chain is
unbroken across the restart, and the journal verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from controller.envelope import verify_chain
from controller.journal import verify_journal
from controller.keys import load_private
from readers.pcscd_host import PcscdHost
from readers.virtual import VirtualCard
from tests.controller.gateway_kit import ALICE_UID, BOB_UID, EventCollector, make_kit
from tests.support.mosquitto import Broker
from tests.support.pcscd import start_pcscd

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _start(config: Path, host: PcscdHost, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **host.env, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "gateway", "run", "--config", str(config)],
        env=env, stdin=subprocess.DEVNULL, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def test_gateway_sigkilled_mid_stream_loses_nothing(tmp_path: Path, broker: Broker) -> None:
    host = start_pcscd(tmp_path)
    kit = make_kit(tmp_path / "gw", mqtt_port=broker.port, unlock_s=0.05)
    collector = EventCollector(broker.port).start()
    log = tmp_path / "gateway.log"
    cards = [VirtualCard(port=host.port + slot, uid=bytes.fromhex(uid))
             for slot, uid in ((0, ALICE_UID), (1, BOB_UID))]
    proc = _start(kit.config_path, host, log)
    try:
        collector.wait_for(lambda e: e.kind == "reader.connected", timeout=30)
        def granted_taps() -> int:
            return sum(1 for (n, _), e in list(collector.events.items())
                       if n == "gw1" and e.kind == "door.access" and e.data["granted"])

        for i in range(20):
            cards[i % 2].tap(timeout=10)
        # a tap read but not yet journaled when the process dies is lost, and so is its door
        # opening (the relay follows the journal): wait until all 20 are on the broker
        collector.wait_for(lambda _e: granted_taps() >= 20, timeout=30)
        proc.send_signal(signal.SIGKILL)  # mid-stream: taps keep coming while it is dead
        proc.wait(10)
        for i in range(4):
            cards[i % 2].insert(timeout=10)
            cards[i % 2].remove()
        proc = _start(kit.config_path, host, log)
        for i in range(20):
            cards[i % 2].tap(timeout=15)
        collector.wait_for(lambda _e: granted_taps() >= 40, timeout=30)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:  # seen once in ~7 parallel runs: say what it waits for
            proc.send_signal(signal.SIGUSR1)  # the gateway prints every thread's stack
            try:  # the unit's TimeoutStopSec is 30 s: within it, systemd never has to SIGKILL
                proc.wait(10)
            finally:
                print("slow stop after SIGTERM; the gateway's threads:\n"
                      + log.read_text(errors="replace")[-6000:])
        public = load_private(kit.config.key_file).public_key()
        report = verify_journal(kit.config.journal_path, public)
        assert report.ok, report.problems
        collector.wait_count("gw1", report.last, timeout=30)
        events = sorted((e for (n, _), e in collector.events.items() if n == "gw1"),
                        key=lambda e: e.seq)
        assert [e.seq for e in events] == list(range(1, report.last + 1)), "every seq once"
        verify_chain(events, public)  # one chain across the kill: no fork, no gap
        for dup in collector.arrivals:  # a resent event is the identical event
            assert dup == collector.events[(dup.node, dup.seq)]
        assert granted_taps() == 40, "the taps before and after the kill, each journaled once"
        starts = [e for e in events if e.kind == "node.started"]
        assert len(starts) == 2 and starts[1].data["resumed_after"] > 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        collector.stop()
        host.stop()
