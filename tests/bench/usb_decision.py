"""Benchmark: USB uevent to ``authorized`` written, on the simulated sysfs.

Two processes, as on a room host: a producer process plays the kernel and udev (it plugs one
device at a time into the simulated sysfs tree and sends the ``add`` uevent over a Unix socket,
the way udev's netlink message reaches the agent), and the agent process runs ``Agent.run`` with
a source that waits on that socket. The latency of each event runs from the producer's time
stamp just before sending (CLOCK_MONOTONIC, shared by both processes) to the moment the agent
has written ``authorized`` and emits ``usb.inserted``. The agent reads the device from sysfs,
parses its descriptors and decides against a policy of 500 registered media. Devices come in
turn: a registered stick with its token, an unknown stick, a keyboard. Follow-up events
(interfaces, disk, token check, udev showing the checked disk, removal) go through the agent
untimed, so its state stays real; a verdict is wrong if the device's authorisation or whether
its disk was shown to user space is not as expected.

Anchors, measured in the same run: (1) the same socket hand-over to a process that only writes
the ``authorized`` file (the floor: wake-up plus one sysfs write), (2) the raw write of
``authorized`` alone (open, write, close). The load average is printed: on a shared machine,
events whose process was preempted make the tail.

    .venv/bin/python tests/bench/usb_decision.py [--events 10000] [--media 500] [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import select
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from usb_guard.agent import Agent  # noqa: E402
from usb_guard.config import UsbAgentConfig  # noqa: E402
from usb_guard.events import KIND_INSERTED  # noqa: E402
from usb_guard.medium_token import BlockDevice, MediumToken, new_token, token_digest  # noqa: E402
from usb_guard.policy import MediumIdentity, RegisteredMedium, UsbPolicy  # noqa: E402
from usb_guard.simulated import SimulatedUsb, keyboard, storage_stick  # noqa: E402
from usb_guard.udev import UEvent  # noqa: E402

HOST = "room-pc1"
TARGET_P99_MS = 5.0
LABELS = ("registered", "unknown", "keyboard")


def build_policy(n_media: int) -> tuple[UsbPolicy, list[MediumToken]]:
    media, tokens = [], []
    for i in range(1, n_media + 1):
        cn = f"USB-{i:04d}"
        medium_token = MediumToken(cn, new_token())
        tokens.append(medium_token)
        media.append(RegisteredMedium(
            control_number=cn,
            identity=MediumIdentity(vendor_id="0781", product_id="5583", serial=f"SN{i:08d}",
                                    interfaces=("08:06:50",)),
            token_digest=token_digest(medium_token.token, cn,
                                      storage_stick(f"SN{i:08d}").binding()), state="in_storage",
            hosts=(HOST,)))
    return UsbPolicy(media=tuple(media)), tokens


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def raw_write(path: str, value: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value)
    finally:
        os.close(fd)


class Channel:
    """Newline-delimited JSON over a stream socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def recv(self, timeout: float | None) -> dict[str, Any] | None:
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return None
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("peer closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message


# -- producer: the kernel and udev ----------------------------------------------------------
def producer(sock: socket.socket, root: str, events: int, token: dict[str, Any],
             anchor: bool) -> None:
    channel = Channel(sock)
    sim = SimulatedUsb(Path(root))
    (sim.devices_dir / "usb1" / "authorized_default").write_text("0")
    (sim.devices_dir / "usb2" / "authorized_default").write_text("0")
    registered = MediumToken(token["control_number"], bytes.fromhex(token["token"]))
    specs = [(storage_stick("SN00000001", registered), True), (storage_stick("NOPE"), False),
             (keyboard(), True)]
    channel.send({"ready": True})
    channel.recv(None)  # the agent has started

    def settle() -> None:
        """Until quiet: wait for the agent to handle all sent, then send what the kernel did."""
        while True:
            channel.send({"sync": True})
            assert channel.recv(None) == {"idle": True}
            batch = sim.drain()
            if not batch:
                return
            for event in batch:
                channel.send({"event": asdict(event)})

    wrong = 0
    for i in range(events):
        spec, expect = specs[i % len(specs)]
        name = sim.plug(spec)
        event = sim.receive(0)
        assert event is not None and event.action == "add"
        channel.send({"event": asdict(event), "t0": time.perf_counter_ns(),
                      "label": LABELS[i % len(specs)]})
        if anchor:
            assert channel.recv(None) == {"written": True}
        settle()
        if not anchor:
            wrong += sim.is_authorized(name) != expect
            disk = sim.disk_of(name)  # shown to user space only for the registered stick
            wrong += (disk is not None and sim.exposed(disk)) != (i % len(specs) == 0)
        sim.unplug(name)
        settle()
    channel.send({"stop": True, "wrong": wrong})


# -- agent side -----------------------------------------------------------------------------
class SocketSource:
    """The agent's udev source: uevents arrive on a socket, as udev's do on netlink."""

    def __init__(self, channel: Channel, stop: threading.Event) -> None:
        self.channel, self.stop = channel, stop
        self.pending: dict[str, Any] = {}
        self.wrong = 0
        self.started = False

    def receive(self, timeout: float) -> UEvent | None:
        if not self.started:  # Agent.run has done its start-up: the producer may begin
            self.started = True
            self.channel.send({"started": True})
        message = self.channel.recv(timeout)
        if message is None:
            return None
        if "sync" in message:
            self.channel.send({"idle": True})
            return None
        if "stop" in message:
            self.wrong = message["wrong"]
            self.stop.set()
            return None
        if "t0" in message:
            self.pending = {"device": message["event"]["sys_name"], "t0": message["t0"],
                            "label": message["label"], "cpu0": time.thread_time_ns()}
        return UEvent(**message["event"])

    def close(self) -> None:
        return None


class RoFile:
    def __init__(self, sysfs_root: Path) -> None:
        self.sysfs_root = sysfs_root

    def set_read_only(self, disk: BlockDevice) -> None:
        (self.sysfs_root / disk.sys_path.removeprefix("/sys/") / "ro").write_text("1")


def run_agent(events: int, media: int, root: Path) -> dict[str, Any]:
    policy, tokens = build_policy(media)
    ours, theirs = socket.socketpair()
    token = {"control_number": tokens[0].control_number, "token": tokens[0].token.hex()}
    child = multiprocessing.get_context("fork").Process(
        target=producer, args=(theirs, str(root), events, token, False))
    child.start()
    channel = Channel(ours)
    assert channel.recv(30) == {"ready": True}
    stop = threading.Event()
    source = SocketSource(channel, stop)
    timings: dict[str, list[float]] = {label: [] for label in LABELS}
    cpu_ms: list[float] = []
    emitted = [0]

    def emit(kind: str, data: Any) -> None:  # the journal's job; counting is enough here
        emitted[0] += 1
        mark = source.pending
        if kind == KIND_INSERTED and data.phase == "insert" and data.device == mark.get("device"):
            timings[mark["label"]].append((time.perf_counter_ns() - mark["t0"]) / 1e6)
            cpu_ms.append((time.thread_time_ns() - mark["cpu0"]) / 1e6)
            source.pending = {}

    sysfs_root = root / "sys"
    config = UsbAgentConfig(host=HOST, sysfs_root=sysfs_root, dev_root=root / "dev",
                            new_devices="unchanged", poll_seconds=60)
    agent = Agent(config, emit=emit, policy_provider=lambda: policy, source=source,
                  read_only=RoFile(sysfs_root), clock=lambda: datetime.now(UTC))
    agent.run(stop)
    child.join(30)
    return {"timings": timings, "cpu": cpu_ms, "wrong": source.wrong, "emitted": emitted[0],
            "stats": agent.stats}


def run_anchors(events: int, root: Path) -> tuple[list[float], list[float]]:
    ours, theirs = socket.socketpair()
    child = multiprocessing.get_context("fork").Process(
        target=producer, args=(theirs, str(root), events,
                               {"control_number": "USB-0001", "token": "00" * 32}, True))
    child.start()
    channel = Channel(ours)
    assert channel.recv(30) == {"ready": True}
    channel.send({"started": True})
    handoff, alone = [], []
    devices = f"{root}/sys/bus/usb/devices"
    while (message := channel.recv(60)) is not None and "stop" not in message:
        if "sync" in message:
            channel.send({"idle": True})
        elif "t0" in message:
            path = f"{devices}/{message['event']['sys_name']}/authorized"
            raw_write(path, b"0")
            handoff.append((time.perf_counter_ns() - message["t0"]) / 1e6)
            t0 = time.perf_counter_ns()
            raw_write(path, b"0")
            alone.append((time.perf_counter_ns() - t0) / 1e6)
            channel.send({"written": True})
    child.join(30)
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
    tmp = Path(tempfile.mkdtemp(prefix="usb-bench-", dir=base))
    try:
        result = run_agent(events, args.media, tmp / "agent")
        handoff, alone = run_anchors(events, tmp / "anchor")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    every = [v for values in result["timings"].values() for v in values]
    load = os.getloadavg()
    print(f"USB decision: uevent -> authorized written, {events} events, {args.media} "
          f"registered media, sysfs on {'tmpfs' if base else 'disk'}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'':34}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    rows = [(f"agent: {k}", v) for k, v in result["timings"].items()]
    rows += [("agent: all", every), ("agent: CPU time of the event", result["cpu"]),
             ("anchor: hand-over + write only", handoff), ("anchor: write authorized alone", alone)]
    for name, values in rows:
        print(f"{name:34}{percentile(values, .5):9.3f}{percentile(values, .9):9.3f}"
              f"{percentile(values, .99):9.3f}{max(values):9.3f}")
    stats = result["stats"]
    print(f"timed events {len(every)}, events emitted {result['emitted']}, wrong verdicts "
          f"{result['wrong']}, token checks ok/mismatch {stats.token_verified}/"
          f"{stats.token_mismatches}, errors {stats.errors}")
    p99 = percentile(every, 0.99)
    print(f"target p99 <= {TARGET_P99_MS} ms: {'met' if p99 <= TARGET_P99_MS else 'MISSED'}; "
          f"mean {statistics.fmean(every):.3f} ms")
    out = {
        "p50_ms": round(percentile(every, 0.5), 4),
        "p99_ms": round(p99, 4),
        "events": len(every),
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
    ok = (result["wrong"] == 0 and stats.errors == 0 and stats.bad_events == 0
          and len(every) == events
          and stats.token_verified == len(result["timings"]["registered"]))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
