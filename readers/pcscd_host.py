"""A private pcscd with the vpcd (virtual reader) driver, for integration tests and the demo.

Each :class:`PcscdHost` runs ``pcscd -f`` in its own mount namespace (``unshare --mount``, so
needs root or user namespaces) with a private directory bind-mounted over ``/run``: its pid
file and client socket live in that directory, so several hosts run side by side and none
touches the system's ``/run/pcscd``. Its reader.conf.d holds one vpcd entry whose two slots
listen on TCP ``port`` and ``port + 1`` (a :class:`readers.virtual.VirtualCard` connects there).

Clients find the daemon through ``PCSCLITE_CSOCK_NAME``. libpcsclite reads that variable once
per process (the first time a context is established) and caches it, so:

* a subprocess (the demo, the gateway under test) gets ``host.env`` in its environment;
* code in *this* process calls :meth:`PcscdHost.use_in_this_process` before its first PC/SC
  call. That points the variable at one process-wide symlink and retargets the symlink at this
  host, so later hosts (next test) work too, one host at a time per process.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

from readers.base import ReaderError

PCSCD_CANDIDATES: Final[tuple[str, ...]] = ("/usr/sbin/pcscd", "/sbin/pcscd")
VPCD_DRIVER_CANDIDATES: Final[tuple[str, ...]] = (
    "/usr/lib/pcsc/drivers/serial/libifdvpcd.so",
    "/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so",
    "/usr/lib64/pcsc/drivers/serial/libifdvpcd.so",
)
SOCKET_ENV: Final[str] = "PCSCLITE_CSOCK_NAME"
DEFAULT_FRIENDLY_NAME: Final[str] = "Virtual PCD"

_process_link_lock = threading.Lock()
_process_link: Path | None = None


def find_pcscd() -> str | None:
    found = shutil.which("pcscd")
    for path in (found, *PCSCD_CANDIDATES):
        if path and Path(path).exists():
            return path
    return None


def find_vpcd_driver() -> str | None:
    return next((p for p in VPCD_DRIVER_CANDIDATES if Path(p).exists()), None)


def _listening_ports(pid: int | None = None) -> set[int]:
    """TCP ports in LISTEN state (IPv4 and IPv6), read from /proc without connecting.

    Connecting to a vpcd port would insert a card, so we never probe it with connect(). With
    ``pid``, only sockets that process holds count (another pcscd may hold the same port).
    """
    owned: set[str] | None = None
    if pid is not None:
        owned = set()
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        owned.add(target[8:-1])
        except OSError:
            return set()
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and (owned is None or fields[9] in owned):
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _term_with_parent() -> None:
    """In the child before exec: ask Linux for SIGTERM when the parent thread dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG survives execve
    except (OSError, AttributeError):
        return  # not Linux: the daemon just outlives a crashed parent


def free_port_pair() -> int:
    """A port p with p and p+1 both free now (vpcd slot 0 and slot 1)."""
    import socket

    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port >= 65535:
            continue
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as b,
            ):
                a.bind(("0.0.0.0", port))  # noqa: S104 - vpcd binds INADDR_ANY, probe the same
                b.bind(("0.0.0.0", port + 1))  # noqa: S104
        except OSError:
            continue
        return port
    raise ReaderError("no free pair of adjacent TCP ports found")


class PcscdHost:
    def __init__(
        self,
        workdir: Path,
        *,
        port: int,
        friendly_name: str = DEFAULT_FRIENDLY_NAME,
        die_with_parent: bool = True,
    ) -> None:
        """``die_with_parent``: pcscd gets SIGTERM when the *thread* that called ``start`` ends
        (Linux PR_SET_PDEATHSIG), so a killed test run leaves no daemon behind; pass False when
        starting it from a short-lived thread."""
        pcscd = find_pcscd()
        driver = find_vpcd_driver()
        if pcscd is None:
            raise ReaderError("pcscd not installed (apt-get install pcscd)")
        if driver is None:
            raise ReaderError("vpcd driver not installed (apt-get install vsmartcard-vpcd)")
        if shutil.which("unshare") is None:
            raise ReaderError("unshare (util-linux) not installed")
        if not 0 < port < 65535:
            raise ValueError(f"port must leave room for port+1, got {port}")
        self.pcscd = pcscd
        self.driver = driver
        self.port = port
        self.friendly_name = friendly_name
        self.die_with_parent = die_with_parent
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf_dir = self.workdir / "reader.conf.d"
        self.conf_dir.mkdir(exist_ok=True)
        self.parked_dir = self.workdir / "reader.conf.parked"
        self.parked_dir.mkdir(exist_ok=True)
        self.log_path = self.workdir / "pcscd.log"
        # Short path: a unix socket path must fit in 108 bytes, pytest's tmp_path may not.
        self.run_dir = Path(tempfile.mkdtemp(prefix="secroom-pcscd-"))
        self.socket_path = self.run_dir / "pcscd" / "pcscd.comm"
        self.env: dict[str, str] = {SOCKET_ENV: str(self.socket_path)}
        self._conf_name = "vpcd"
        (self.conf_dir / self._conf_name).write_text(self._reader_conf())
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0

    @property
    def ports(self) -> tuple[int, int]:
        return (self.port, self.port + 1)

    def _reader_conf(self) -> str:
        return (
            f'FRIENDLYNAME "{self.friendly_name}"\n'
            f"DEVICENAME   /dev/null:0x{self.port:04X}\n"
            f"LIBPATH      {self.driver}\n"
            f"CHANNELID    0x{self.port:04X}\n"
        )

    def expected_reader_names(self) -> list[str]:
        """The names pcscd gives the two vpcd slots (first reader index)."""
        return [f"{self.friendly_name} 00 00", f"{self.friendly_name} 00 01"]

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            raise ReaderError("pcscd already running for this host")
        pcscd_dir = self.run_dir / "pcscd"
        pcscd_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("pcscd.pid", "pcscd.comm"):  # left behind by kill()
            (pcscd_dir / stale).unlink(missing_ok=True)
        script = 'mount --bind "$1" /run && exec "$2" -f -c "$3"'
        self._log = self.log_path.open("ab")
        self._log_offset = self._log.tell()  # this run's lines start here
        self._proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "sh",
                "-c",
                script,
                "sh",
                str(self.run_dir),
                self.pcscd,
                str(self.conf_dir),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if k != SOCKET_ENV},
            preexec_fn=_term_with_parent if self.die_with_parent else None,  # noqa: PLW1509
        )
        want = set(self.ports) if self._reader_configured() else set()
        pid = self._proc.pid  # unshare and sh exec into pcscd: same pid
        self._wait(
            lambda: self.socket_path.exists() and want <= _listening_ports(pid),
            timeout,
            "pcscd socket and vpcd ports",
        )

    def _reader_configured(self) -> bool:
        return (self.conf_dir / self._conf_name).exists()

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise ReaderError(f"pcscd exited with {self._proc.returncode}: {self.log_tail()}")
            if ready():
                return
            if "init failed" in self.log_tail():
                raise ReaderError(
                    f"vpcd could not listen on ports {self.ports} (in use?): {self.log_tail()}"
                )
            time.sleep(0.02)  # an outside process: nothing to subscribe to
        raise ReaderError(f"timed out after {timeout}s waiting for {what}: {self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        """The last lines pcscd logged since the latest start (errors only, by default)."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Clean shutdown (SIGTERM), then remove the private run directory."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._close_log()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL pcscd (a crash): clients see the service vanish, cards see vpcd close."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(5)
        self._close_log()

    def restart(self, timeout: float = 10.0) -> None:
        self.kill()
        self.start(timeout)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- reader slot removed / returned -----------------------------------------------------

    def remove_reader(self, timeout: float = 10.0) -> None:
        """Unplug the vpcd reader (both slots).

        pcscd 1.9.9 cannot drop or add a reader.conf (serial) reader at run time: SIGUSR1
        (``pcscd --hotplug``) only rescans USB with the libudev backend, and RFReCheckReaderConf
        refuses a modified configuration. So the conf file is parked and pcscd restarted
        cleanly: clients see the daemon blink and come back without the reader.
        """
        src = self.conf_dir / self._conf_name
        if not src.exists():
            raise ReaderError("reader already removed")
        src.rename(self.parked_dir / self._conf_name)
        self._clean_restart(timeout)

    def return_reader(self, timeout: float = 10.0) -> None:
        """Plug the vpcd reader back in (clean pcscd restart with the conf file restored)."""
        parked = self.parked_dir / self._conf_name
        if not parked.exists():
            raise ReaderError("reader is not removed")
        parked.rename(self.conf_dir / self._conf_name)
        self._clean_restart(timeout)

    def _clean_restart(self, timeout: float) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(5)
        self._close_log()
        self.start(timeout)

    # -- clients -----------------------------------------------------------------------------

    def use_in_this_process(self) -> None:
        """Make PC/SC calls in this process reach this host (see the module docstring)."""
        global _process_link
        with _process_link_lock:
            if _process_link is None:
                link_dir = Path(tempfile.mkdtemp(prefix=f"secroom-pcsc-{os.getpid()}-"))
                _process_link = link_dir / "pcscd.comm"
                atexit.register(shutil.rmtree, link_dir, True)
            tmp = _process_link.with_name(f".link-{time.monotonic_ns()}")
            tmp.symlink_to(self.socket_path)
            os.replace(tmp, _process_link)
            os.environ[SOCKET_ENV] = str(_process_link)

    def reader_names(self, timeout: float = 10.0) -> list[str]:
        """Ask the daemon for its reader names (in a subprocess, so this process is untouched)."""
        code = (
            "from readers.pcsc import list_reader_names\nprint('\\n'.join(list_reader_names()))\n"
        )
        env = {**os.environ, **self.env}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, timeout=timeout
        )
        if done.returncode != 0:
            raise ReaderError(f"listing readers failed: {done.stderr.decode(errors='replace')}")
        return [n for n in done.stdout.decode().splitlines() if n]

    def __enter__(self) -> PcscdHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
