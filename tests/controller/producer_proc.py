"""A node process for the crash tests and the benchmark (run as a child, never collected).

    python tests/controller/producer_proc.py SETTINGS_JSON --until N [--chunk K] [--threads T]

Starts a NodeRuntime from the settings file and emits ``door.rex`` events in chunks of K (K=1:
single ``emit`` calls), from T threads, until the journal head reaches N (so after a restart it
continues from the journal head). Prints
``head <seq>`` after every commit, ``delivered <seq> <seconds>`` once the broker PUBACKed
everything, ``cpu_s <seconds>`` of CPU this process used meanwhile, then ``rss_mb <peak>``, and
stops the runtime cleanly.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from controller.events import DoorRex  # noqa: E402
from controller.runtime import NodeRuntime, RuntimeSettings  # noqa: E402


def rex(n: int) -> DoorRex:
    return DoorRex(door=f"d{n:063d}")  # ~500 bytes with its envelope, each one different


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("settings", type=Path)
    ap.add_argument("--until", type=int, required=True)
    ap.add_argument("--chunk", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quiet", action="store_true", help="print only the summary lines")
    args = ap.parse_args()
    rt = NodeRuntime(RuntimeSettings.model_validate_json(args.settings.read_text()))
    rt.start()
    start = time.perf_counter()
    cpu0 = os.times()

    def produce() -> None:
        head = rt.journal.head()[0]
        while head < args.until:
            if args.chunk == 1:
                head = rt.emit("door.rex", rex(head)).seq
            else:
                items = [("door.rex", rex(head + i)) for i in range(args.chunk)]
                head = rt.emit_many(items)[-1].seq
            if not args.quiet:
                print(f"head {head}", flush=True)

    threads = [threading.Thread(target=produce) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    head = rt.journal.head()[0]
    ok = rt.wait_delivered(head, 120)
    print(f"delivered {head if ok else -1} {time.perf_counter() - start:.6f}", flush=True)
    cpu1 = os.times()
    used = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    print(f"cpu_s {used:.3f}", flush=True)  # this process, from the first emit to the last PUBACK
    print(f"rss_mb {peak_rss_mb():.1f}", flush=True)
    rt.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
