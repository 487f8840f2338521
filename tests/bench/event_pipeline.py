"""Benchmark: events per second journaled (signed, chained, fsynced) and PUBACKed at QoS 1.

    .venv/bin/python tests/bench/event_pipeline.py [--quick] [--events N]

Starts a private Mosquitto, then measures in the same run:
- the anchor: ``mosquitto_pub -q 1 -l -M <inflight>`` publishing N lines of the size of one of
  our events, timed from start to exit (the C client's QoS 1 rate on this machine);
- the node: ``tests/controller/producer_proc.py`` as its own process (a NodeRuntime on a fresh
  journal) emitting N events, timed from the first emit until the broker PUBACKed the last one,
  for a few producer shapes (one thread with emit_many batches, several threads, single emits);
- the node process's peak RSS (VmHWM) for the headline run.

The last line is ``RESULT {json}`` with events_per_s (headline: emit_many of 100 from one
thread), mosquitto_pub_qos1_per_s and peak_rss_mb.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from controller.keys import generate  # noqa: E402
from controller.mqtt import MqttSettings  # noqa: E402
from controller.runtime import RuntimeSettings  # noqa: E402
from tests.support import require_binary  # noqa: E402
from tests.support.mosquitto import Broker  # noqa: E402

PRODUCER = ROOT / "tests" / "controller" / "producer_proc.py"
INFLIGHT = 1000
EVENT_BYTES = 500  # a door.rex event of producer_proc with its envelope is 503 bytes


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def anchor_rate(port: int, n: int) -> tuple[float, float]:
    """(messages/s, CPU µs per message) of mosquitto_pub at QoS 1."""
    binary = require_binary("mosquitto_pub")
    lines = ("x" * (EVENT_BYTES - 1) + "\n") * n
    cpu0, start = children_cpu(), time.perf_counter()
    subprocess.run(
        [binary, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-M", str(INFLIGHT),
         "-t", "bench/anchor", "-l"],
        input=lines.encode(), check=True, stdout=subprocess.DEVNULL,
    )
    return n / (time.perf_counter() - start), (children_cpu() - cpu0) / n * 1e6


def node_run(
    workdir: Path, port: int, n: int, chunk: int, threads: int
) -> tuple[float, float, float]:
    """(events/s journaled and PUBACKed, CPU µs per event, peak RSS MB) of a fresh node."""
    workdir.mkdir(parents=True)
    key = workdir / "node.pem"
    generate(key)
    settings = RuntimeSettings(
        node="bench1", site="bench", journal=workdir / "journal.db", key_file=key,
        mqtt=MqttSettings(port=port, max_inflight=INFLIGHT),
    )
    sfile = workdir / "settings.json"
    sfile.write_text(settings.model_dump_json())
    out = subprocess.run(
        [sys.executable, str(PRODUCER), str(sfile), "--until", str(n), "--chunk", str(chunk),
         "--threads", str(threads), "--quiet"],
        check=True, capture_output=True, text=True,
    ).stdout.split("\n")
    delivered = next(x for x in out if x.startswith("delivered")).split()
    cpu = float(next(x for x in out if x.startswith("cpu_s")).split()[1])
    rss = float(next(x for x in out if x.startswith("rss_mb")).split()[1])
    if int(delivered[1]) < n:
        raise SystemExit(f"node did not get PUBACKs for all events: {delivered}")
    events = int(delivered[1])
    return events / float(delivered[2]), cpu / events * 1e6, rss


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="5,000 events, fewer shapes")
    ap.add_argument("--events", type=int)
    args = ap.parse_args()
    n = args.events or (5_000 if args.quick else 50_000)
    shapes = [(100, 1)] if args.quick else [(100, 1), (100, 2), (10, 4), (1, 8)]
    rows: list[tuple[str, float, float, str]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="secroom-bench-") as tmp:
        broker = Broker(Path(tmp) / "mosquitto")
        broker.start()
        try:
            anchor, anchor_cpu = anchor_rate(broker.port, n)
            rows.append((f"anchor: mosquitto_pub -q 1 -l -M {INFLIGHT}", anchor, anchor_cpu, ""))
            headline = headline_cpu = rss = 0.0
            for i, (chunk, threads) in enumerate(shapes):
                events = n if chunk > 1 else min(n, 5_000)
                rate, cpu, peak = node_run(
                    Path(tmp) / f"node{i}", broker.port, events, chunk, threads
                )
                call = "emit (single)" if chunk == 1 else f"emit_many({chunk})"
                what = f"node: {call} x {threads} thread(s), {events} ev"
                rows.append((what, rate, cpu, f"{peak:.1f}"))
                if i == 0:
                    headline, headline_cpu, rss = rate, cpu, peak
        finally:
            broker.stop()
    load = os.getloadavg()
    print(f"event pipeline: {n} events of ~{EVENT_BYTES} B, QoS 1, each one signed, chained and")
    print("fsynced (SQLite WAL, synchronous=FULL) before it is published; rate = first emit to")
    print("last PUBACK; CPU = the publishing process's user+sys time per event")
    print(f"{'what':<50} {'events/s':>9} {'CPU µs/ev':>10} {'peak RSS MB':>12}")
    for what, rate, cpu, note in rows:
        print(f"{what:<50} {rate:>9,.0f} {cpu:>10.0f} {note:>12}")
    print(
        f"load average {load_before:.2f} before, {load[0]:.2f} after, on {os.cpu_count()} CPUs "
        "(shared machine: rates scale with the CPU left over; CPU µs/ev does not)"
    )
    print(f"node events per CPU-second: {1e6 / headline_cpu:,.0f}")
    print("targets: events_per_s >= 5000, peak_rss_mb <= 80")
    result = {
        "events_per_s": round(headline, 1),
        "mosquitto_pub_qos1_per_s": round(anchor, 1),
        "peak_rss_mb": round(rss, 1),
        "cpu_us_per_event": round(headline_cpu, 1),
        "mosquitto_pub_cpu_us_per_msg": round(anchor_cpu, 1),
        "load_avg_1m": round(load[0], 2),
    }
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
