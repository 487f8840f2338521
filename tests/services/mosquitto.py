"""A Mosquitto broker owned by one test: free port, private config, can be killed and restarted."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.services import free_port, port_open, require_binary, stop_process, wait_until


class Broker:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
        self.port = port or free_port()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "max_inflight_messages 0\n"
            "max_queued_messages 0\n"
            "log_dest none\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), 10, f"mosquitto on port {self.port}")

    def kill(self) -> None:
        """SIGKILL the broker (a crash, not a clean shutdown)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)
