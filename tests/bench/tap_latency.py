"""Benchmark: card tap to relay, through a real pcscd with the virtual card.

uid_to_relay: from the moment the reader adapter parsed the UID to the relay energised, which
includes the access decision and the durable (fsync'd) journal commit of door.access.
present_to_relay: from the moment the reader adapter saw the card to the relay energised
(includes pcscd's presence detection and the GET DATA round trip). Anchor, measured in the same
run: a bare SQLite WAL commit with synchronous=FULL of one row the size of an event, the floor
under any durable journal.

Verified runs, in the same run after the UID run: the gateway applies a slice whose cards are
enrolled verified and which carries a site card key sealed to it; then card present -> relay
with a virtual DESFire EV2 (select application + AuthenticateEV2First, AES) and with a virtual
FeliCa Lite-S (write RC + read with MAC_A, 3DES), each tap proving its key over pcscd + vpcd
(target p99 <= 150 ms each).

    python tests/bench/tap_latency.py [--taps 1000] [--verified-taps 300] [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gpiozero.pins.mock import MockFactory  # noqa: E402

from controller.gateway import Gateway  # noqa: E402
from controller.localbroker import LocalBroker  # noqa: E402
from readers.base import CardTap  # noqa: E402
from readers.pcsc import PcscReaders  # noqa: E402
from readers.pcscd_host import PcscdHost, free_port_pair  # noqa: E402
from readers.verify.base import SiteKey  # noqa: E402
from readers.verify.select import CardVerifier  # noqa: E402
from readers.virtual import VirtualCard  # noqa: E402
from readers.virtual_cards import DesfireCard, FelicaLiteSCard  # noqa: E402
from tests.controller.gateway_kit import (  # noqa: E402
    ALICE_UID,
    BOB_UID,
    DOOR,
    GatewayKit,
    make_kit,
    make_policy,
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def sqlite_commit_anchor(workdir: Path, n: int) -> list[float]:
    db = sqlite3.connect(workdir / "anchor.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, body BLOB)")
    body = b"x" * 600
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?)", (i, body))
        db.execute("COMMIT")
        out.append((time.perf_counter() - t0) * 1000)
    db.close()
    return out


def hashed_slice(kit: GatewayKit, *, version: int = 1,
                 site_key: SiteKey | None = None) -> bytes:
    """gw1's slice (cards as HMACs under its card key), signed; written as the kit's policy
    file with the card key beside it: every tap is hashed before the lookup. With
    ``site_key`` the cards are enrolled verified and the key is sealed into the slice."""
    from datetime import UTC, datetime, timedelta

    from controller.policy import Policy, sign_policy
    from controller.policy_slice import NodeScope, card_key_for, slice_policy

    key = card_key_for(kit.admin_key, kit.config.node.site, "gw1")
    body = make_policy(version).model_dump()
    if site_key is not None:
        for person in body["people"]:
            person["verified_cards"] = person["cards"]
    site = Policy.model_validate({**body, "expires_at": datetime.now(UTC) + timedelta(days=7)})
    part = slice_policy(site, "gw1", NodeScope(doors=frozenset({DOOR})), key,
                        site_keys=[site_key] if site_key else [])
    blob = sign_policy(part, kit.admin_key)
    (kit.root / "policy.signed").write_bytes(blob)
    (kit.root / "card.key").write_text(key.hex() + "\n")
    return blob


class Meter:
    """Wraps the door's grant to timestamp the relay energising for each tap."""

    def __init__(self, gateway: Gateway) -> None:
        self.uid_to_relay: list[float] = []
        self.present_to_relay: list[float] = []
        self.done = threading.Event()
        self._tap: CardTap | None = None
        door = gateway.doors[DOOR]
        original_grant = door.grant
        original_on_tap = gateway.on_tap

        self.grants = 0

        def grant(**kw: object) -> None:
            self.grants += 1
            original_grant(**kw)  # type: ignore[arg-type]
            t = time.monotonic()
            tap = self._tap
            if tap is not None:
                self.uid_to_relay.append((t - tap.read_monotonic) * 1000)
                self.present_to_relay.append((t - tap.present_monotonic) * 1000)

        def on_tap(tap: CardTap) -> None:
            self._tap = tap
            original_on_tap(tap)
            self.done.set()

        door.grant = grant  # type: ignore[method-assign]
        gateway.on_tap = on_tap  # type: ignore[method-assign]

    def run(self, cards: list[VirtualCard], taps: int) -> tuple[list[float], list[float]]:
        """``taps`` presentations, cycling ``cards``; every one must be granted."""
        self.uid_to_relay, self.present_to_relay, self.grants = [], [], 0
        for i in range(taps):
            self.done.clear()
            card = cards[i % len(cards)]
            card.insert(timeout=10)  # held until the gateway has acted, as a hand would
            try:
                if not self.done.wait(10):
                    raise SystemExit(f"tap {i} was not handled within 10 s")
            finally:
                card.remove()
        if self.grants != taps:
            raise SystemExit(f"only {self.grants} of {taps} taps were granted")
        return self.uid_to_relay, self.present_to_relay


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--taps", type=int, default=1000)
    ap.add_argument("--verified-taps", type=int, default=300,
                    help="taps of each verified card (DESFire, FeliCa Lite-S)")
    ap.add_argument("--quick", action="store_true", help="50 taps of each")
    args = ap.parse_args()
    taps = 50 if args.quick else args.taps
    vtaps = 50 if args.quick else args.verified_taps

    with tempfile.TemporaryDirectory(prefix="secroom-bench-tap-") as tmp:
        work = Path(tmp)
        broker = LocalBroker(work / "mosquitto")
        broker.start()
        host = PcscdHost(work / "pcscd", port=free_port_pair())
        host.start()
        host.use_in_this_process()
        kit = make_kit(work / "gw", mqtt_port=broker.port, unlock_s=0.05)
        hashed_slice(kit)  # decide as a deployed gateway does: its slice, cards HMAC'd
        verifier = CardVerifier()
        gateway = Gateway(kit.config, reader=PcscReaders(verifier=verifier),
                          pin_factory=MockFactory())
        gateway.start()
        meter = Meter(gateway)
        cards = [VirtualCard(port=host.port, uid=bytes.fromhex(u)) for u in (ALICE_UID, BOB_UID)]
        site_key = SiteKey("bench", bytes(range(32)))
        desfire = DesfireCard.enrolled(bytes.fromhex(ALICE_UID), site_key)
        felica = FelicaLiteSCard.enrolled(bytes.fromhex(BOB_UID), site_key)
        try:
            u, p = meter.run(cards, taps)
            if not gateway.offer_policy(hashed_slice(kit, version=2, site_key=site_key)):
                raise SystemExit("the verified slice was not applied")
            assert verifier.key_ids == ["bench"]
            _, pd = meter.run([VirtualCard(port=host.port, uid=desfire.uid, atr=desfire.atr,
                                           applet=desfire)], vtaps)
            _, pf = meter.run([VirtualCard(port=host.port, uid=felica.uid, atr=felica.atr,
                                           applet=felica)], vtaps)
            anchor = sqlite_commit_anchor(work, max(200, taps))
        finally:
            gateway.stop()
            host.stop()
            broker.stop()

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        ("uid -> relay (incl. journal fsync)", statistics.median(u), pct(u, 99), max(u)),
        ("card present -> relay", statistics.median(p), pct(p, 99), max(p)),
        ("verified DESFire AES present -> relay", statistics.median(pd), pct(pd, 99), max(pd)),
        ("verified FeliCa MAC_A present -> relay", statistics.median(pf), pct(pf, 99),
         max(pf)),
        ("anchor: bare SQLite FULL commit", statistics.median(anchor), pct(anchor, 99),
         max(anchor)),
    ]
    print(f"tap latency over {len(u)} granted UID taps (target: uid->relay p99 <= 10 ms) and "
          f"{len(pd)} + {len(pf)} verified taps (target: present->relay p99 <= 150 ms)")
    print(f"{'measure':40} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for name, p50, p99, mx in rows:
        print(f"{name:40} {p50:9.3f} {p99:9.3f} {mx:9.3f}")
    print(f"bench process peak RSS {rss_mb:.1f} MB")
    result = {
        "uid_to_relay_p50_ms": round(statistics.median(u), 3),
        "uid_to_relay_p99_ms": round(pct(u, 99), 3),
        "present_to_relay_p50_ms": round(statistics.median(p), 3),
        "present_to_relay_p99_ms": round(pct(p, 99), 3),
        "taps": len(u),
        "verified_desfire_p50_ms": round(statistics.median(pd), 3),
        "verified_desfire_p99_ms": round(pct(pd, 99), 3),
        "verified_felica_p50_ms": round(statistics.median(pf), 3),
        "verified_felica_p99_ms": round(pct(pf, 99), 3),
        "verified_taps": len(pd) + len(pf),
        "anchor_sqlite_full_commit_p50_ms": round(statistics.median(anchor), 3),
        "anchor_sqlite_full_commit_p99_ms": round(pct(anchor, 99), 3),
    }
    print("RESULT " + json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
