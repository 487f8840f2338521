"""`secroom usb agent` for the soak, on a simulated USB host (run as a child process).

    python tests/soak/usb_proc.py --config usb-agent.toml --host-dir DIR

The real command (``controller.cli.main(["usb", "agent", ...])``: node runtime, journal, MQTT,
the dashboard's signed policy followed over MQTT) with the agent's udev source replaced by
``usb_guard.simulated.SimulatedUsb`` (sysfs under ``--host-dir``), as the demo's host does: no
kernel is involved. Stdin lines drive the simulated kernel: ``plug N`` plugs the demo's registered
stick N (0-11, tokens as ``dashboard.demo.usb`` writes them), ``plug private`` an unregistered
one, ``unplug`` removes the oldest plugged stick. Prints ``soak-usb ready`` once running.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import usb_guard.cli as usb_cli  # noqa: E402
from controller.cli import main as secroom_main  # noqa: E402
from dashboard.demo.usb import _token  # noqa: E402
from usb_guard.agent import Agent  # noqa: E402
from usb_guard.ledger import ControlNumbering  # noqa: E402
from usb_guard.medium_token import MediumToken  # noqa: E402
from usb_guard.simulated import SimulatedReadOnly, SimulatedUsb, storage_stick  # noqa: E402

HOST_DIR: Path | None = None


def _commands(sim: SimulatedUsb, stop: threading.Event) -> None:
    plugged: list[str] = []
    for line in sys.stdin:
        parts = line.split()
        if stop.is_set():
            return
        if parts[:1] == ["plug"] and len(parts) == 2:
            if parts[1] == "private":
                spec = storage_stick("PRIVATE01", None)
            else:
                i = int(parts[1])
                number = ControlNumbering().allocate(i)[0]
                spec = storage_stick(f"DEMO{i + 1:04d}", MediumToken(number, _token(i)))
            plugged.append(sim.plug(spec))
        elif parts == ["unplug"] and plugged:
            sim.unplug(plugged.pop(0))


def simulated_agent(args: argparse.Namespace, emit: Any, policy_provider: Any) -> int:
    import signal

    assert HOST_DIR is not None
    sim = SimulatedUsb(HOST_DIR)
    config = usb_cli.agent_config(args).model_copy(
        update={"sysfs_root": sim.sysfs_root, "dev_root": sim.dev_root, "poll_seconds": 0.2}
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent = Agent(
        config,
        emit=emit,
        policy_provider=policy_provider,
        source=sim,
        read_only=SimulatedReadOnly(sim),
    )
    threading.Thread(target=_commands, args=(sim, stop), daemon=True).start()
    print("soak-usb ready", flush=True)
    try:
        agent.run(stop)
    finally:
        sim.close()
    return 0


def main() -> int:
    global HOST_DIR
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--host-dir", type=Path, required=True)
    args = ap.parse_args()
    HOST_DIR = args.host_dir
    usb_cli.agent_handler = simulated_agent
    return secroom_main(["usb", "agent", "--config", args.config])


if __name__ == "__main__":
    sys.exit(main())
