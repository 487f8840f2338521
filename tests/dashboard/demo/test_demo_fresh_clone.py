"""`secroom demo` from a fresh clone: dashboard up, one tap through the simulator panel in
Chromium shows in the door log, Ctrl-C (SIGINT) leaves no process behind.

The clone is ``git clone`` of this checkout's committed HEAD into a temporary directory, so
anything uncommitted or ignored (.venv, .demo, keys) is absent, as on a fresh clone. The demo
runs from the clone (cwd and PYTHONPATH = the clone, ``python -m controller.cli demo``) with the
interpreter of the virtual environment running this test: ``make demo`` would create a new
.venv inside the clone first, which takes minutes and the network; the package set is the same
(pyproject.toml), and every module imported comes from the clone, not from this checkout (the
test asserts that on the running process's open files). ``make demo``'s own venv step is the
Makefile's, exercised by CI's fresh build.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dashboard.demo.seed import staff
from tests.support import unavailable
from tests.support.processes import alive, descendants

REPO = Path(__file__).resolve().parents[3]
URL_LINE = re.compile(r"dashboard: (http://127\.0\.0\.1:\d+)/\s+user: (\S+)\s+password: (\S+)")
DAEMONS = ("pcscd", "mosquitto", "cupsd", "uvicorn")
BANNER = "secroom demo running"
# Alembic INFO lines, in its own format ("INFO  [alembic...") or the CLI's ("INFO alembic...")
LIBRARY_INFO = re.compile(r"\bINFO\s+\[?alembic")

pytestmark = pytest.mark.integration


def staff_uid(person_id: str) -> str:
    return next(m.uid for m in staff() if m.id == person_id)


def _under(pid: int, root: Path) -> bool:
    """The process runs from, or names, the clone."""
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return cwd.startswith(str(root)) or str(root) in cmdline


def _names(pids: set[int]) -> dict[int, str]:
    out = {}
    for pid in pids:
        try:
            out[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
    return out


def _lines(proc: subprocess.Popen[str], sink: queue.Queue[str], log: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        log.append(line)
        sink.put(line)


def test_fresh_clone_demo_tap_in_browser_then_nothing_left(
    tmp_path: Path, chromium_page: Any
) -> None:
    for binary in ("git", "pcscd", "mosquitto", "unshare"):
        if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
            unavailable(f"{binary} not installed")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=60)
    assert not (clone / ".venv").exists() and not (clone / ".demo").exists()
    env = {**os.environ, "PYTHONPATH": str(clone), "PYTHONUNBUFFERED": "1"}
    env.pop("PCSCLITE_CSOCK_NAME", None)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "demo", "--workdir", str(clone / ".demo"),
         "--no-input"],
        cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True,  # its own group, as in a terminal
    )
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []
    reader = threading.Thread(target=_lines, args=(proc, lines, log), daemon=True)
    reader.start()
    seen: set[int] = set()
    try:
        match = None
        deadline = time.monotonic() + 40
        while match is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("no dashboard line within 40 s:\n" + "".join(log[-40:]))
            match = URL_LINE.search(line)
            if proc.poll() is not None and lines.empty():
                if proc.returncode == 3:
                    unavailable("the demo cannot start here: " + "".join(log[-5:]))
                pytest.fail(f"demo exited with {proc.returncode}:\n" + "".join(log[-40:]))
        startup_s = time.monotonic() - started
        before = "".join(log[: next(i for i, text in enumerate(log) if BANNER in text)])
        noise = [text for text in before.splitlines() if LIBRARY_INFO.search(text)]
        assert not noise, "the demo prints Alembic's INFO lines before its banner:\n" + before
        url, user, password = match.groups()
        seen = descendants(proc.pid) | {proc.pid}
        names = set(_names(seen).values())
        assert {"pcscd", "mosquitto"} <= names, names
        if os.geteuid() == 0 and (shutil.which("cupsd") or Path("/usr/sbin/cupsd").exists()):
            assert "cupsd" in names, names  # the demo's private CUPS (root only)
        # the same interpreter, cwd and PYTHONPATH import the clone's code, not this checkout's
        where = subprocess.run(
            [sys.executable, "-c", "import controller, dashboard; "
             "print(controller.__file__); print(dashboard.__file__)"],
            cwd=clone, env=env, capture_output=True, text=True, check=True, timeout=30,
        ).stdout.split()
        assert all(Path(w).is_relative_to(clone) for w in where), where

        from playwright.sync_api import expect

        page = chromium_page
        page.goto(f"{url}/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/(\?.*)?$"))
        page.goto(f"{url}/simulator")
        # someone the demo's policy lets in at any hour (the IT group has no time windows):
        # the payroll staff's window ends at midnight, Tokyo time, and CI runs at all hours
        member = next(m for m in staff() if m.group == "it")
        page.select_option("#tap-person", member.id)
        page.select_option("#tap-reader", "0")
        page.click("#tap-button")
        assert member.name in page.locator("#sim-done").inner_text()
        # the door is drawn live: the relay lights up once the gateway has granted the tap
        expect(page.locator('.sim-door[data-door="server-room"] .sim-relay')).to_have_attribute(
            "fill", "#2a2")
        page.goto(f"{url}/door-log?person={member.id}")
        row = page.locator("#door-log tbody tr[data-event^='gw1:']", has_text=member.name).first
        row.wait_for()  # the live gateway's event, named (never the id or the card's UID)
        text = row.inner_text()
        assert member.name in text and member.id not in text
        assert staff_uid(member.id) not in text and "サーバールーム" in text
        seen |= descendants(proc.pid)
    finally:
        if proc.poll() is None:  # Ctrl-C: a terminal signals the whole foreground group
            os.killpg(proc.pid, signal.SIGINT)
        try:
            rc = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            pytest.fail("the demo did not stop within 20 s of SIGINT")
        finally:
            reader.join(5)
            if proc.stdout is not None:
                proc.stdout.close()
    assert rc == 0, "".join(log[-20:])
    assert "stopping the demo" in "".join(log)
    assert "Traceback" not in "".join(log), "".join(log[-40:])
    # every node trusts the demo dashboard's signer: its acks and resend requests are taken
    assert "receipt_refused" not in "".join(log), "".join(log[-40:])
    left = {pid for pid in seen if alive(pid)}
    assert not left, f"processes left after Ctrl-C: {_names(left)}"
    strays = {int(p.name) for p in Path("/proc").iterdir()
              if p.name.isdigit() and alive(int(p.name)) and _under(int(p.name), clone)}
    strays.discard(os.getpid())
    assert not strays, f"processes still running from the clone: {_names(strays)}"
    assert startup_s < 40
