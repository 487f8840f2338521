"""Real services started by the tests themselves (Mosquitto, pcscd, cupsd...).

In CI (SECROOM_REQUIRE_INTEGRATION=1) a missing service fails the test; elsewhere it skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def integration_required() -> bool:
    return os.environ.get("SECROOM_REQUIRE_INTEGRATION", "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Fail in CI, skip elsewhere."""
    if integration_required():
        pytest.fail(f"integration service unavailable (SECROOM_REQUIRE_INTEGRATION=1): {reason}")
    pytest.skip(reason)


def require_binary(name: str, *candidates: str) -> str:
    for path in (shutil.which(name), *candidates):
        if path and Path(path).exists():
            return path
    unavailable(f"{name} not installed (apt-get install the package that provides it)")
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.02
) -> None:
    """Poll ``predicate`` until true; used only for external processes we cannot subscribe to."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
