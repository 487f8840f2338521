"""Benchmark: card tap to last job released, for 1, 10 and 100 held jobs, on a real cupsd.

    .venv/bin/python tests/bench/print_release.py [--quick]

Starts a private cupsd (tests/support/cupsd.py: 127.0.0.1, free port, own spool) with the
production queue layout: a stopped hold queue, its release queue and its stopped staging queue
(``--no-staging``: the layout before the staging queue, every job moved on its own). The release
queue prints to a FIFO that a thread of this process drains at once, as fast as /dev/null: the
printer. For each size N, alice submits N jobs (bob 5 more, which must stay held), then the clock
runs from the call ``PrintRelease.release_for`` (what the gateway does on a tap, after the card
and rights lookup) until CUPS reports every one of alice's jobs on the release queue in state
pending, processing or completed (release_N_ms), and until the first byte of printer data
reaches the printer (first_job_ms: the first page of the first job starts). Jobs released in
one round finish printing before the next round starts, untimed.

Anchors measured in the same run on the same daemon, one job each:
* ``anchor_ipp_move_ms``: one raw CUPS-Move-Job round trip through pycups (including the 401
  and Local-certificate authentication libcups does for every admin operation), no listing.
* ``anchor_lpmove_ms``: ``lpmove JOB release-queue``, the CUPS command-line tool.

The last line is ``RESULT {json}`` with release_1_ms, release_10_ms, release_100_ms (medians),
first_job_ms (median over the 100-job rounds; first_job_1_ms and first_job_10_ms for the others)
and the anchors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from controller.printing import JobState, PrintRelease, PrintSettings  # noqa: E402
from controller.printing.cups_adapter import CupsAdapter  # noqa: E402
from controller.printing.types import RELEASED_STATES  # noqa: E402
from tests.support.cupsd import Cupsd  # noqa: E402


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


class Printer:
    """The release queue's device: a FIFO drained by a thread that notes when data arrives."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path, 0o600)
        self.uri = f"file://{path}"
        # read-write: there is always a writer, so reads block between jobs instead of
        # returning end-of-file, and cupsd's open for writing never waits for a reader
        self._fd = os.open(path, os.O_RDWR)
        self._lock = threading.Lock()
        self._first: float | None = None
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except OSError:
                return
            now = time.perf_counter()
            with self._lock:
                if data and self._first is None:
                    self._first = now

    def arm(self) -> None:
        with self._lock:
            self._first = None

    def first_data(self) -> float | None:
        with self._lock:
            return self._first


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="one round per size, 20 instead of 100")
    ap.add_argument("--no-staging", action="store_true",
                    help="no staging queue (the layout before it): every job moved on its own")
    args = ap.parse_args()
    sizes = {1: 5, 10: 3, 100: 3} if not args.quick else {1: 1, 10: 1, 20: 1}
    anchor_rounds = 1 if args.quick else 5

    if os.geteuid() != 0:
        print("needs root: a private cupsd, and libcups' Local root certificate", file=sys.stderr)
        return 2
    with Cupsd.private() as cupsd:
        printer = Printer(cupsd.workdir / "printer.fifo")
        hold, release = cupsd.add_room_printer(
            "bench", device=printer.uri, staging=not args.no_staging
        )
        adapter = CupsAdapter(cupsd.host, cupsd.port, state_dir=cupsd.state)
        events: list[tuple[str, Mapping[str, Any]]] = []
        svc = PrintRelease(
            PrintSettings(printers=[hold]), cups=adapter, emit=lambda k, d: events.append((k, d))
        )
        bobs = [cupsd.submit("bob", hold) for _ in range(5)]

        def settle(ids: list[int]) -> None:
            wait_for(
                lambda: all(
                    loc.state == JobState.COMPLETED for loc in adapter.locate(ids).values()
                ),
                60,
                "released jobs to finish printing",
            )

        def released(ids: list[int]) -> bool:
            locs = adapter.locate(ids)
            return len(locs) == len(ids) and all(
                loc.queue == release and loc.state in RELEASED_STATES for loc in locs.values()
            )

        svc.ensure_holding()
        results: dict[int, list[float]] = {}
        firsts: dict[int, list[float]] = {}
        for n, rounds in sizes.items():
            for _ in range(rounds):
                ids = [cupsd.submit("alice", hold) for _ in range(n)]
                printer.arm()
                t0 = time.perf_counter()
                out = svc.release_for("p-alice", ["alice"], hold)
                wait_for(lambda ids=ids: released(ids), 60, f"{n} jobs released")  # type: ignore[misc]
                elapsed = time.perf_counter() - t0
                if list(out.released) != ids:
                    raise SystemExit(f"released {out.released}, expected {ids} in this order")
                results.setdefault(n, []).append(elapsed)
                wait_for(lambda: printer.first_data() is not None, 60, "the first page")
                firsts.setdefault(n, []).append(printer.first_data() - t0)  # type: ignore[operator]
                settle(ids)
        still = {j.job_id for j in adapter.waiting_jobs(hold)}
        if still != set(bobs):
            raise SystemExit(f"bob's jobs should still be held, found {sorted(still)}")

        ipp, lpmove = [], []
        for _ in range(anchor_rounds):
            jid = cupsd.submit("alice", hold)
            (job,) = [j for j in adapter.waiting_jobs(hold) if j.job_id == jid]
            t0 = time.perf_counter()
            adapter.release(job, release)
            ipp.append(time.perf_counter() - t0)
            jid2 = cupsd.submit("alice", hold)
            t0 = time.perf_counter()
            subprocess.run(
                ["lpmove", "-h", cupsd.server, str(jid2), release],
                check=True,
                env=cupsd.env(),
                capture_output=True,
            )
            lpmove.append(time.perf_counter() - t0)
            if not released([jid, jid2]):
                raise SystemExit("anchor jobs were not released")
            settle([jid, jid2])

    print(f"{'held jobs':>10} {'rounds':>7} {'median ms':>10} {'min ms':>9} {'max ms':>9} "
          f"{'ms/job':>8} {'first page ms (median, max)':>28}")
    medians: dict[int, float] = {}
    first_medians: dict[int, float] = {}
    for n, times in results.items():
        medians[n] = statistics.median(times)
        first_medians[n] = statistics.median(firsts[n])
        print(
            f"{n:>10} {len(times):>7} {ms(medians[n]):>10} {ms(min(times)):>9} "
            f"{ms(max(times)):>9} {ms(medians[n] / n):>8} "
            f"{ms(first_medians[n]):>19}, {ms(max(firsts[n]))}"
        )
    a_ipp, a_lp = statistics.median(ipp), statistics.median(lpmove)
    print(f"anchor: one raw CUPS-Move-Job via pycups  {ms(a_ipp)} ms (median of {len(ipp)})")
    print(f"anchor: lpmove of one job               {ms(a_lp)} ms (median of {len(lpmove)})")
    result = {f"release_{n}_ms": ms(t) for n, t in medians.items()}
    result |= {f"first_job_{n}_ms": ms(t) for n, t in first_medians.items()}
    result["first_job_ms"] = result.pop("first_job_100_ms", None)  # type: ignore[arg-type]
    if args.quick:  # keep the asked-for keys; quick mode measures 20 instead of 100
        result["release_100_ms"] = None  # type: ignore[assignment]
        result["quick_release_20_ms"] = result.pop("release_20_ms")
        result["quick_first_job_20_ms"] = result.pop("first_job_20_ms")
    load = round(os.getloadavg()[0], 2)
    print(f"load average (1 min) at the end: {load} on {os.cpu_count()} CPUs")
    result.update(
        anchor_ipp_move_ms=ms(a_ipp), anchor_lpmove_ms=ms(a_lp), quick=args.quick,
        staging=not args.no_staging, loadavg_1m=load,
    )
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
