"""A private Mosquitto process on a loopback port, for the demo and the tests.

Production uses a system broker with TLS and an ACL (hardware/mosquitto/); this one is
anonymous, bound to 127.0.0.1 only, and keeps nothing on disk.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class BrokerUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def find_mosquitto() -> str:
    for path in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if path and Path(path).exists():
            return path
    raise BrokerUnavailable("mosquitto is not installed: apt-get install mosquitto")


class LocalBroker:
    host = "127.0.0.1"

    def __init__(self, workdir: Path, port: int | None = None, binary: str | None = None) -> None:
        self.binary = binary or find_mosquitto()
        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
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

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if self.proc.poll() is not None:
                raise BrokerUnavailable(f"mosquitto exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"mosquitto did not listen on {self.port} in {timeout}s")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the broker (a crash, not a clean shutdown)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
