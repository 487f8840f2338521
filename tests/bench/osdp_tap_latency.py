"""Benchmark: a card read at an OSDP reader (libosdp's PD on a pty, secure channel) to the relay,
and the door's decision back to the reader's LED.

wire_to_relay: from the PD submitting the card read to the relay energised: the CP's next poll,
the secure-channel reply (MAC and decryption on both sides), the adapter, the access decision
and the durable (fsync'd) journal commit of door.access. uid_to_relay: from the adapter parsing
the card data to the relay. relay_to_led: from the relay to the PD receiving the green LED
command (queued by the gateway, sent on the CP's next poll). Anchor, measured in the same run: a
bare SQLite WAL commit with synchronous=FULL of one row the size of an event (the floor under
any durable journal), as in tap_latency.py. A pty has no line rate: on RS-485 at 9,600 baud each
SC reply of a card read (about 40 bytes) adds about 40 ms of wire time.

    python tests/bench/osdp_tap_latency.py [--taps 200] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import osdp  # noqa: E402
from gpiozero.pins.mock import MockFactory  # noqa: E402

from controller.adapters import build_reader  # noqa: E402
from controller.gateway import Gateway  # noqa: E402
from controller.localbroker import LocalBroker  # noqa: E402
from readers.base import CardTap  # noqa: E402
from tests.bench.tap_latency import pct, sqlite_commit_anchor  # noqa: E402
from tests.controller.gateway_kit import ALICE_UID, BOB_UID, DOOR, make_kit  # noqa: E402
from tests.support.osdp_pd import PtyLine, VirtualOsdpReader, write_key  # noqa: E402

READER = "osdp-in"


class Meter:
    """Timestamps the relay energising (the door's grant returning) for each tap."""

    def __init__(self, gateway: Gateway) -> None:
        self.relay_at: list[float] = []
        self.uid_to_relay: list[float] = []
        self.done = threading.Event()
        self._tap: CardTap | None = None
        door = gateway.doors[DOOR]
        original_grant, original_on_tap = door.grant, gateway.on_tap

        def grant(**kw: object) -> None:
            original_grant(**kw)  # type: ignore[arg-type]
            t = time.monotonic()
            self.relay_at.append(t)
            if self._tap is not None:
                self.uid_to_relay.append((t - self._tap.read_monotonic) * 1000)

        def on_tap(tap: CardTap) -> None:
            self._tap = tap
            original_on_tap(tap)
            self.done.set()

        door.grant = grant  # type: ignore[method-assign]
        gateway.on_tap = on_tap  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--taps", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="30 taps")
    args = ap.parse_args()
    taps = 30 if args.quick else args.taps
    wire: list[float] = []
    led: list[float] = []

    with tempfile.TemporaryDirectory(prefix="secroom-bench-osdp-") as tmp:
        work = Path(tmp)
        broker = LocalBroker(work / "mosquitto")
        broker.start()
        line = PtyLine()
        key = os.urandom(16)
        binding = {"name": READER, "kind": "osdp", "role": "door_in", "door": DOOR,
                   "port": line.port, "address": 101,
                   "key_file": str(write_key(work / "reader.key", key))}
        kit = make_kit(work / "gw", mqtt_port=broker.port, unlock_s=0.05, bindings=[binding])
        pd = VirtualOsdpReader(line, scbk=key).start()
        gateway = Gateway(kit.config, reader=build_reader(kit.config), pin_factory=MockFactory())
        gateway.start()
        meter = Meter(gateway)
        try:
            deadline = time.monotonic() + 30
            while gateway.readers_connected.get(READER) is not True:
                if time.monotonic() > deadline:
                    raise SystemExit("the OSDP reader did not come online within 30 s")
                time.sleep(0.05)
            for i in range(taps):
                meter.done.clear()
                mark = len(pd.commands)
                t0 = time.monotonic()
                pd.tap((ALICE_UID, BOB_UID)[i % 2])
                if not meter.done.wait(10):
                    raise SystemExit(f"tap {i} was not handled within 10 s")
                pd.wait_command(lambda c: c["command"] == osdp.Command.LED, after=mark,
                                timeout=10)
                t_led = time.monotonic()
                relay = meter.relay_at[-1]
                wire.append((relay - t0) * 1000)
                led.append((t_led - relay) * 1000)
                time.sleep(0.06)  # the door relocks (unlock_s 0.05) before the next card
            anchor = sqlite_commit_anchor(work, max(200, taps))
        finally:
            gateway.stop()
            pd.stop()
            line.close()
            broker.stop()

    u = meter.uid_to_relay
    rows = [
        ("PD card read -> relay (SC, journal fsync)", wire),
        ("adapter parsed -> relay", u),
        ("relay -> reader LED command received", led),
        ("anchor: bare SQLite FULL commit", anchor),
    ]
    print(f"OSDP tap latency over {len(wire)} granted taps (pty, secure channel, 1 reader)")
    print(f"{'measure':42} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for name, values in rows:
        print(f"{name:42} {statistics.median(values):9.3f} {pct(values, 99):9.3f} "
              f"{max(values):9.3f}")
    result = {
        "osdp_wire_to_relay_p50_ms": round(statistics.median(wire), 3),
        "osdp_wire_to_relay_p99_ms": round(pct(wire, 99), 3),
        "osdp_uid_to_relay_p99_ms": round(pct(u, 99), 3),
        "osdp_relay_to_led_p50_ms": round(statistics.median(led), 3),
        "osdp_relay_to_led_p99_ms": round(pct(led, 99), 3),
        "taps": len(wire),
        "anchor_sqlite_full_commit_p99_ms": round(pct(anchor, 99), 3),
    }
    print("RESULT " + json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
