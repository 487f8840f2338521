"""sd_notify through a real unix datagram socket: our own protocol code and python-systemd's,
the watchdog interval systemd hands over, and the loop beat of the USB agent."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller import sdnotify
from tests.support import unavailable

ROOT = Path(__file__).resolve().parents[2]


class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket (a short path: sun_path <= 107)."""

    def __init__(self, abstract: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sdn-"))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"secroom-test-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = str(self.dir / "notify")
            self.sock.bind(self.address)

    def receive(self, timeout: float = 10.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def terminate_like_systemd(proc: subprocess.Popen[bytes], notify: NotifySocket) -> bytes:
    """SIGTERM a notifying service as systemd stops it; STOPPING=1 must come (after any
    watchdog ping already on its way), and the process must end by itself, leaving none of
    its descendants behind. Returns its output."""
    from tests.support.processes import alive, descendants

    helpers = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGTERM)
    seen = [notify.receive(timeout=30)]
    while seen[-1] == "WATCHDOG=1":
        seen.append(notify.receive(timeout=30))
    assert seen[-1] == "STOPPING=1"
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    assert not [pid for pid in helpers if alive(pid)], "nothing left for systemd to kill"
    return out


@pytest.fixture(params=[False, True], ids=["path", "abstract"])
def listener(request: pytest.FixtureRequest) -> Iterator[NotifySocket]:
    s = NotifySocket(abstract=request.param)
    yield s
    s.close()


def test_the_protocol_sends_one_datagram_to_notify_socket(listener: NotifySocket) -> None:
    assert sdnotify.send("READY=1\nSTATUS=up", {"NOTIFY_SOCKET": listener.address})
    assert listener.receive() == "READY=1\nSTATUS=up"


def test_outside_systemd_nothing_is_sent_and_nothing_fails(tmp_path: Path) -> None:
    assert not sdnotify.send("READY=1", {})
    assert not sdnotify.send("READY=1", {"NOTIFY_SOCKET": "relative"})
    # a socket path nobody listens on (systemd went away): not fatal
    assert not sdnotify.send("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})


def test_python_systemd_notify_reaches_the_socket_when_installed() -> None:
    """Debian's python3-systemd (the system interpreter's): ``notify`` goes through it."""
    system_python = "/usr/bin/python3"
    probe = subprocess.run([system_python, "-c", "import systemd.daemon"], capture_output=True,
                           check=False)
    if probe.returncode != 0:
        unavailable("python3-systemd not installed (apt-get install python3-systemd)")
    listener = NotifySocket()
    try:
        code = ("import controller.sdnotify as s; assert s._library_notify() is not None; "
                "assert s.notify('READY=1\\nSTATUS=via python-systemd')")
        subprocess.run([system_python, "-c", code], check=True, timeout=30, cwd=ROOT,
                       env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
                            "NOTIFY_SOCKET": listener.address})
        assert listener.receive() == "READY=1\nSTATUS=via python-systemd"
    finally:
        listener.close()


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process_only() -> None:
    me = str(os.getpid())
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": me}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


def test_loop_beat_readies_once_then_pings_per_interval_while_healthy(
        listener: NotifySocket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    monkeypatch.setattr(sdnotify, "_library_notify", lambda: None)  # our protocol code
    now = [100.0]
    healthy = [True]
    beat = sdnotify.LoopBeat("agent up", healthy=lambda: healthy[0], interval=5.0,
                             monotonic=lambda: now[0])
    beat.beat()
    assert listener.receive() == "READY=1\nSTATUS=agent up"
    beat.beat()  # same instant: no ping yet
    now[0] += 5.0
    beat.beat()
    assert listener.receive() == "WATCHDOG=1"
    healthy[0] = False
    now[0] += 10.0
    beat.beat()  # unhealthy: no ping, so systemd's watchdog fires
    healthy[0] = True
    now[0] += 5.0
    beat.beat()
    assert listener.receive() == "WATCHDOG=1"
    assert beat.pings == 2


# A SIGTERM that the kernel hands to another thread than the main one: CPython only notes it,
# and its handler (which sets the stop event) runs when the main thread next runs Python code.
_SIGNAL_ON_A_THREAD = """
import signal, sys, threading
sys.path.insert(0, {root!r})
from controller.sdnotify import ServiceNotifier

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
main = threading.get_native_id()

def other():
    # once the main thread sleeps in the kernel (the wait below; its wchan names the futex)
    wchan = f"/proc/self/task/{{main}}/wchan"
    for _ in range(500):
        with open(wchan) as fh:
            if "futex" in fh.read():
                break
        threading.Event().wait(0.01)
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # delivered to this thread

threading.Thread(target=other).start()
ServiceNotifier(interval={interval}).run(stop)
print("stopped", flush=True)
"""


@pytest.mark.parametrize("interval", [None, 3600.0])
def test_run_stops_on_a_signal_delivered_to_another_thread(interval: float | None) -> None:
    """Before the sliced wait, the gateway's main thread slept on in ``stop.wait()`` after such
    a SIGTERM (seen: about 1 stop in 13 on a loaded machine took over 20 s)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    done = subprocess.run([sys.executable, "-c", _SIGNAL_ON_A_THREAD.format(root=str(ROOT),
                                                                             interval=interval)],
                          capture_output=True, text=True, timeout=20, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "stopped\n"
