"""Benchmark: personalising a blank card and re-keying one, through a real pcscd + vpcd.

Each presentation is timed from the moment the PC/SC reader adapter saw the card present
(``CardTap.present_monotonic``: after pcscd's presence poll, which vpcd runs every 400 ms and
which no reader command can shorten) to the moment it hands the finished tap over (GET DATA and
the credential step done), all in one process on one clock. Runs, in the same run and on the
same reader:

* anchor: a verified DESFire EV2 tap (select application + AuthenticateEV2First) and a
  verified FeliCa Lite-S tap (write RC + read with MAC_A), as every door tap does;
* personalise_desfire: a blank DESFire EV2 (select PICC, EV2First with the PICC master key,
  CreateApplication MACed, select, EV2First, ChangeKey enciphered, EV2First proof);
* personalise_desfire_factory: the same with the factory DES PICC master key (EV2First
  refused, select PICC, AuthenticateISO 2K3DES, plain CreateApplication, then as above);
* personalise_felica: a blank FeliCa Lite-S (write ID, CKV, CK, data; write RC, read with
  MAC_A proof);
* rekey_desfire: a DESFire on the previous site key during a changeover (EV2First on the new
  key fails, EV2First on the old one, ChangeKey, EV2First proof on the new key);
* rekey_felica: a FeliCa Lite-S on the previous site key (verify under both keys, a fresh
  challenge, ID + WCNT read with MAC_A, CK written with MAC_A, MAC_A proof on the new key).

    python tests/bench/card_enrol.py [--taps 100] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from readers.base import CardTap, ReaderStatus, ReadFailure  # noqa: E402
from readers.pcsc import PcscReaders  # noqa: E402
from readers.pcscd_host import PcscdHost, free_port_pair  # noqa: E402
from readers.verify.base import SiteKey, Strength  # noqa: E402
from readers.verify.select import CardVerifier  # noqa: E402
from readers.virtual import VirtualCard  # noqa: E402
from readers.virtual_cards import DesfireCard, FelicaLiteSCard  # noqa: E402

K1 = SiteKey("k1", bytes(range(32)))
K2 = SiteKey("k2", bytes(range(32, 64)))


class Sink:
    def __init__(self) -> None:
        self.taps: queue.Queue[tuple[float, CardTap | ReadFailure]] = queue.Queue()
        self.connected: queue.Queue[str] = queue.Queue()

    def on_tap(self, tap: CardTap) -> None:
        self.taps.put((time.monotonic(), tap))

    def on_failure(self, failure: ReadFailure) -> None:
        self.taps.put((time.monotonic(), failure))

    def on_status(self, status: ReaderStatus) -> None:
        if status.connected:
            self.connected.put(status.reader)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(host: PcscdHost, sink: Sink, verifier: CardVerifier, reader: str, mode: str,
        taps: int) -> list[float]:
    times: list[float] = []
    for i in range(taps):
        uid7 = bytes.fromhex("04") + i.to_bytes(6, "big")
        idm = bytes.fromhex("012E") + i.to_bytes(6, "big")
        if mode == "verify_desfire":
            verifier.set_keys([K1])
            uid, applet = uid7, DesfireCard.enrolled(uid7, K1)
        elif mode == "verify_felica":
            verifier.set_keys([K1])
            uid, applet = idm, FelicaLiteSCard.enrolled(idm, K1)
        elif mode == "personalise_desfire":
            verifier.set_keys([K1])
            uid, applet = uid7, DesfireCard.blank(uid7)
            verifier.arm(reader, f"r{i}", time.monotonic() + 30)
        elif mode == "personalise_desfire_factory":
            verifier.set_keys([K1])
            uid, applet = uid7, DesfireCard.blank(uid7, factory_des=True)
            verifier.arm(reader, f"r{i}", time.monotonic() + 30)
        elif mode == "personalise_felica":
            verifier.set_keys([K1])
            uid, applet = idm, FelicaLiteSCard.blank(idm)
            verifier.arm(reader, f"r{i}", time.monotonic() + 30)
        elif mode == "rekey_desfire":
            verifier.set_keys([K2, K1])
            uid, applet = uid7, DesfireCard.enrolled(uid7, K1)
        else:  # rekey_felica
            verifier.set_keys([K2, K1])
            uid, applet = idm, FelicaLiteSCard.enrolled(idm, K1)
        card = VirtualCard(port=host.port, uid=uid, applet=applet, atr=applet.atr)
        card.insert(timeout=10)
        try:
            at, tap = sink.taps.get(timeout=10)
        finally:
            card.remove()
        if not isinstance(tap, CardTap) or tap.credential.strength is not Strength.VERIFIED:
            raise SystemExit(f"{mode} tap {i} did not verify: {tap}")
        if mode.startswith("rekey") and tap.credential.rekeyed_from != "k1":
            raise SystemExit(f"rekey tap {i} was not re-keyed: {tap.credential}")
        times.append((at - tap.present_monotonic) * 1000)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--taps", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="20 taps of each")
    args = ap.parse_args()
    taps = 20 if args.quick else args.taps
    modes = ["verify_desfire", "personalise_desfire", "personalise_desfire_factory",
             "rekey_desfire", "verify_felica", "personalise_felica", "rekey_felica"]
    result: dict[str, Any] = {"taps": taps, "load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="secroom-bench-enrol-") as tmp:
        host = PcscdHost(Path(tmp) / "pcscd", port=free_port_pair())
        host.start()
        host.use_in_this_process()
        verifier = CardVerifier()
        sink = Sink()
        readers = PcscReaders(verifier=verifier, reader_filter=lambda n: n.endswith("00 00"))
        readers.start(sink)
        try:
            reader = sink.connected.get(timeout=30)
            rows = []
            for mode in modes:
                times = run(host, sink, verifier, reader, mode, taps)
                p50, p99 = statistics.median(times), pct(times, 0.99)
                rows.append((mode, p50, p99, max(times)))
                result[f"{mode}_p50_ms"] = round(p50, 1)
                result[f"{mode}_p99_ms"] = round(p99, 1)
        finally:
            readers.stop()
            host.stop()
    print(f"card seen present -> tap handed over, {taps} taps each, load {result['load']:.2f}")
    print(f"{'run':<30}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for mode, p50, p99, worst in rows:
        print(f"{mode:<30}{p50:>10.1f}{p99:>10.1f}{worst:>10.1f}")
    print("anchor: verify_desfire / verify_felica (every door tap does this much)")
    print("RESULT " + json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
