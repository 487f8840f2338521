"""A stand-in for systemd-logind: a private D-Bus daemon with python-dbusmock's logind template.

logind itself cannot run in a test container (it needs systemd as PID 1), so the closest real
stand-in serves the same D-Bus API: ``org.freedesktop.login1`` on a bus the test starts
(``dbus-daemon``), the template's ``ListSessions``, ``LockSession``, ``TerminateSession`` and
session properties, plus its mock interface to add sessions and read the calls it received.
The mock runs under Debian's own Python (python3-dbusmock needs dbus-python and GLib, which
the project's virtual environment does not carry); the test talks to it over D-Bus only.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection
from jeepney.wrappers import unwrap_msg

from tests.support import require_binary, stop_process, unavailable, wait_until

SYSTEM_PYTHON = "/usr/bin/python3"
MOCK = DBusAddress("/org/freedesktop/login1", bus_name="org.freedesktop.login1",
                   interface="org.freedesktop.DBus.Mock")
BUS = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                  interface="org.freedesktop.DBus")


class LogindStandIn:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.address = ""
        self._daemon: subprocess.Popen[bytes] | None = None
        self._mock: subprocess.Popen[bytes] | None = None
        self._conn: Any = None
        self._logs: list[Any] = []

    def start(self) -> None:
        daemon = require_binary("dbus-daemon", "/usr/bin/dbus-daemon")
        if not Path(SYSTEM_PYTHON).exists() or subprocess.run(
                [SYSTEM_PYTHON, "-c", "import dbusmock.templates.logind"],
                capture_output=True, check=False).returncode != 0:
            unavailable("python3-dbusmock not installed for /usr/bin/python3 "
                        "(apt-get install python3-dbusmock)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        socket = self.workdir / "bus"
        self.address = f"unix:path={socket}"
        self._daemon = subprocess.Popen(
            [daemon, "--session", "--nofork", "--print-address=1", f"--address={self.address}"],
            stdout=subprocess.PIPE, stderr=self._log("dbus.log"))
        assert self._daemon.stdout is not None
        # it prints its address once it listens
        if not self._daemon.stdout.readline().startswith(b"unix:"):
            raise RuntimeError("dbus-daemon did not start; see " f"{self.workdir / 'dbus.log'}")
        env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": self.address}
        env.pop("PYTHONPATH", None)
        self._mock = subprocess.Popen(
            [SYSTEM_PYTHON, "-m", "dbusmock", "--session", "--template", "logind",
             "-l", str(self.workdir / "logind-calls.log")],
            env=env, stdout=subprocess.DEVNULL, stderr=self._log("mock.log"))
        self._conn = open_dbus_connection(bus=self.address)
        wait_until(self._has_logind, 20, "the logind mock on its bus")

    def _log(self, name: str) -> Any:
        fh = (self.workdir / name).open("wb")
        self._logs.append(fh)
        return fh

    def _call(self, address: DBusAddress, method: str, signature: str | None = None,
              body: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        msg = new_method_call(address, method, signature, body)
        return tuple(unwrap_msg(self._conn.send_and_get_reply(msg, timeout=10)))

    def _has_logind(self) -> bool:
        return bool(self._call(BUS, "NameHasOwner", "s", ("org.freedesktop.login1",))[0])

    def add_session(self, session_id: str, account: str, uid: int, seat: str = "seat0") -> str:
        (path,) = self._call(MOCK, "AddSession", "ssusb", (session_id, seat, uid, account, True))
        return str(path)

    def calls(self, method: str) -> list[tuple[Any, ...]]:
        """Arguments of each call of a Manager ``method`` the mock received, in order."""
        (calls,) = self._call(MOCK, "GetMethodCalls", "s", (method,))
        return [tuple(a[1] if isinstance(a, tuple) and len(a) == 2 else a for a in args)
                for _ts, args in calls]

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        for proc in (self._mock, self._daemon):
            if proc is not None:
                stop_process(proc)
        if self._daemon is not None and self._daemon.stdout is not None:
            self._daemon.stdout.close()
        for fh in self._logs:
            fh.close()
