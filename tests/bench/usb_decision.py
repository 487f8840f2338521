"""Benchmark: USB uevent to ``authorized`` written, on the simulated sysfs.

The agent runs in its own thread (``Agent.run``), blocked waiting for the next uevent, as on a
room host. For each of N events the main thread plugs one device into the simulated stack (a
registered stick with its token, an unknown stick, or a keyboard, in turn), stamps the time and
hands the ``add`` uevent over; the agent wakes up, reads the device from sysfs, parses its
descriptors, decides against a policy of 500 registered media, writes ``authorized`` and emits
``usb.inserted``: the latency ends at that emit. The follow-up events (interfaces, disk, token
check, removal) are handled by the agent untimed, so its state stays realistic.

Anchors, measured in the same run: (1) the same hand-over to a thread that only writes the
``authorized`` file (the floor of this measurement: wake-up plus one sysfs write), (2) the raw
write of ``authorized`` alone (open, write, close). The machine's load average is printed: on a
shared machine a preempted event shows up in the tail.

    .venv/bin/python tests/bench/usb_decision.py [--events 10000] [--media 500] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from usb_guard.agent import Agent  # noqa: E402
from usb_guard.config import UsbAgentConfig  # noqa: E402
from usb_guard.events import KIND_INSERTED  # noqa: E402
from usb_guard.medium_token import MediumToken, new_token, token_digest  # noqa: E402
from usb_guard.policy import MediumIdentity, RegisteredMedium, UsbPolicy  # noqa: E402
from usb_guard.simulated import (  # noqa: E402
    SimulatedReadOnly,
    SimulatedUsb,
    keyboard,
    storage_stick,
)
from usb_guard.udev import UEvent  # noqa: E402

HOST = "room-pc1"
TARGET_P99_MS = 5.0


def build_policy(n_media: int) -> tuple[UsbPolicy, MediumToken]:
    media = []
    tokens = []
    for i in range(1, n_media + 1):
        cn = f"USB-{i:04d}"
        medium_token = MediumToken(cn, new_token())
        tokens.append(medium_token)
        media.append(RegisteredMedium(
            control_number=cn,
            identity=MediumIdentity(vendor_id="0781", product_id="5583", serial=f"SN{i:08d}",
                                    interfaces=("08:06:50",)),
            token_digest=token_digest(medium_token.token, cn), state="in_storage",
            hosts=(HOST,)))
    return UsbPolicy(media=tuple(media)), tokens[0]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def raw_write(path: str, value: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value)
    finally:
        os.close(fd)


class Handoff:
    """The agent's udev source: follow-up events from the simulation, else the next uevent
    the main thread hands over (the netlink socket's role)."""

    def __init__(self, sim: SimulatedUsb) -> None:
        self.sim = sim
        self.inbox: queue.SimpleQueue[UEvent | None] = queue.SimpleQueue()
        self.idle = threading.Event()
        self.cpu0 = 0

    def receive(self, timeout: float) -> UEvent | None:
        event = self.sim.receive(0)
        if event is not None:
            return event
        self.idle.set()
        try:
            event = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        self.cpu0 = time.thread_time_ns()
        return event

    def close(self) -> None:
        return None


def run_agent(events: int, media: int, sim: SimulatedUsb) -> dict[str, Any]:
    policy, token = build_policy(media)
    source = Handoff(sim)
    measured = threading.Event()
    mark: dict[str, Any] = {"device": None, "t1": 0, "cpu": 0}
    emitted = [0]

    def emit(kind: str, data: Any) -> None:  # the journal's job; counting is enough here
        emitted[0] += 1
        if kind == KIND_INSERTED and data.phase == "insert" and data.device == mark["device"]:
            mark["t1"] = time.perf_counter_ns()
            mark["cpu"] = time.thread_time_ns() - source.cpu0
            measured.set()

    config = UsbAgentConfig(host=HOST, sysfs_root=sim.sysfs_root, dev_root=sim.dev_root,
                            poll_seconds=60)
    agent = Agent(config, emit=emit, policy_provider=lambda: policy, source=source,
                  read_only=SimulatedReadOnly(sim), clock=lambda: datetime.now(UTC))
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    specs = [("registered", storage_stick("SN00000001", token), True),
             ("unknown", storage_stick("NOPE"), False),
             ("keyboard", keyboard(), True)]
    timings: dict[str, list[float]] = {label: [] for label, _, _ in specs}
    cpu_ms: list[float] = []
    wrong = 0
    try:
        source.idle.wait(30)
        for i in range(events):
            label, spec, expect = specs[i % len(specs)]
            name = sim.plug(spec)
            event = sim.receive(0)  # the add uevent; the agent is asleep on its inbox
            assert event is not None and event.action == "add"
            mark["device"] = name
            measured.clear()
            source.idle.clear()
            t0 = time.perf_counter_ns()
            source.inbox.put(event)
            if not measured.wait(30):
                raise RuntimeError(f"no usb.inserted for {name}: {agent.stats}")
            timings[label].append((mark["t1"] - t0) / 1e6)
            cpu_ms.append(mark["cpu"] / 1e6)
            source.idle.wait(30)  # interfaces, disk, token check: untimed
            wrong += sim.is_authorized(name) != expect
            sim.unplug(name)
            source.idle.clear()
            source.inbox.put(None)  # wake the agent for the removal events
            source.idle.wait(30)
    finally:
        stop.set()
        source.inbox.put(None)
        thread.join(30)
    return {"timings": timings, "cpu": cpu_ms, "wrong": wrong, "emitted": emitted[0],
            "stats": agent.stats}


def run_anchors(events: int, sim: SimulatedUsb) -> tuple[list[float], list[float]]:
    name = sim.plug(keyboard())
    path = f"{sim.devices_dir}/{name}/authorized"
    inbox: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    done = threading.Event()
    t1 = [0]

    def writer() -> None:
        while inbox.get() is not None:
            raw_write(path, b"1")
            t1[0] = time.perf_counter_ns()
            done.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    handoff, alone = [], []
    for _ in range(events):
        done.clear()
        t0 = time.perf_counter_ns()
        inbox.put(1)
        done.wait(30)
        handoff.append((t1[0] - t0) / 1e6)
        t0 = time.perf_counter_ns()
        raw_write(path, b"1")
        alone.append((time.perf_counter_ns() - t0) / 1e6)
    inbox.put(None)
    thread.join(30)
    sim.unplug(name)
    return handoff, alone


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--media", type=int, default=500, help="registered media in the policy")
    parser.add_argument("--quick", action="store_true", help="300 events, for a smoke run")
    args = parser.parse_args()
    events = 300 if args.quick else args.events
    shm = "/dev/shm"  # noqa: S108 - tmpfs like sysfs; the directory itself is private (mkdtemp)
    base = shm if os.access(shm, os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="usb-bench-", dir=base))
    try:
        sim = SimulatedUsb(root / "usb")
        result = run_agent(events, args.media, sim)
        handoff, alone = run_anchors(events, sim)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    every = [v for values in result["timings"].values() for v in values]
    load = os.getloadavg()
    print(f"USB decision: uevent -> authorized written, {events} events, {args.media} "
          f"registered media, sysfs on {'tmpfs' if base else 'disk'}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'':34}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    rows = [(f"agent: {k}", v) for k, v in result["timings"].items()]
    rows += [("agent: all", every), ("agent: CPU time of the thread", result["cpu"]),
             ("anchor: hand-over + write only", handoff), ("anchor: write authorized alone", alone)]
    for name, values in rows:
        print(f"{name:34}{percentile(values, .5):9.3f}{percentile(values, .9):9.3f}"
              f"{percentile(values, .99):9.3f}{max(values):9.3f}")
    stats = result["stats"]
    print(f"events emitted {result['emitted']}, wrong verdicts {result['wrong']}, token checks "
          f"ok/mismatch {stats.token_verified}/{stats.token_mismatches}, errors {stats.errors}")
    p99 = percentile(every, 0.99)
    print(f"target p99 <= {TARGET_P99_MS} ms: {'met' if p99 <= TARGET_P99_MS else 'MISSED'}; "
          f"mean {statistics.fmean(every):.3f} ms")
    out = {
        "p50_ms": round(percentile(every, 0.5), 4),
        "p99_ms": round(p99, 4),
        "events": events,
        "cpu_p99_ms": round(percentile(result["cpu"], 0.99), 4),
        "anchor_handoff_write_p50_ms": round(percentile(handoff, 0.5), 4),
        "anchor_handoff_write_p99_ms": round(percentile(handoff, 0.99), 4),
        "anchor_write_authorized_p50_ms": round(percentile(alone, 0.5), 4),
        "anchor_write_authorized_p99_ms": round(percentile(alone, 0.99), 4),
        "load_average_1m": round(load[0], 2),
        "registered_media": args.media,
        "target_p99_ms": TARGET_P99_MS,
        "wrong_verdicts": result["wrong"],
    }
    print("RESULT " + json.dumps(out, sort_keys=True))
    ok = result["wrong"] == 0 and stats.errors == 0 and stats.bad_events == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
