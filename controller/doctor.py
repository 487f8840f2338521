"""`secroom doctor`: check an installation end to end and say what to fix.

Each check gives one line: ``ok``, ``warn`` (works, but look at it) or ``fail`` (broken, or a
risk to the records), with the fix in words. The checks shared by nodes and the dashboard live
here (files and their modes, disk space, the clock, the broker with its TLS and credentials);
the node's are in ``controller.doctor_node``, the dashboard's come through the
``secroom.doctor`` entry point (``dashboard.doctor``).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from controller.clock import kernel_clock
from controller.mqtt import MqttError, MqttLink, MqttSettings

Status = Literal["ok", "warn", "fail"]
DISK_FAIL_BYTES = 200 * 1024 * 1024
DISK_WARN_BYTES = 2 * 1024 * 1024 * 1024
CLOCK_FAIL_S = 1.0  # an offset beyond this puts event times in doubt
BROKER_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Check:
    status: Status
    what: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<5} {self.what}: {self.detail}"
        return f"{text} -- fix: {self.fix}" if self.fix and self.status != "ok" else text


def ok(what: str, detail: str) -> Check:
    return Check("ok", what, detail)


def report(checks: list[Check]) -> tuple[str, int]:
    """The lines to print and the exit code (0 when nothing failed, else 1)."""
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    lines = [c.line() for c in checks]
    if failed:
        lines.append(f"{failed} check(s) failed, {warned} warning(s): fix the failures above "
                     "and run secroom doctor again")
    else:
        lines.append(f"all {len(checks)} checks passed" + (f", {warned} warning(s)"
                                                              if warned else ""))
    return "\n".join(lines), 1 if failed else 0


# -- files ----------------------------------------------------------------------------------
def private_file(path: Path, what: str, *, missing: Status = "fail",
                 missing_fix: str = "") -> Check:
    """A secret or a record: present, a regular file, readable by its owner only (0600)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return Check(missing, f"{what} {path}", "missing", missing_fix)
    except PermissionError:
        return Check("fail", f"{what} {path}", "cannot be read by this user",
                     "run secroom doctor as the service's user (e.g. sudo -u secroom)")
    if not stat.S_ISREG(st.st_mode):
        return Check("fail", f"{what} {path}", "not a regular file", f"replace {path}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return Check("fail", f"{what} {path}", f"mode {mode:04o}: others can read it",
                     f"chmod 600 {path}")
    if st.st_uid != os.geteuid():
        return Check("warn", f"{what} {path}",
                     f"mode {mode:04o} but owned by uid {st.st_uid}, not this user",
                     "chown the file to the service's user, or run doctor as that user")
    return ok(f"{what} {path}", f"present, mode {mode:04o}")


def data_dir(path: Path, what: str = "data dir") -> list[Check]:
    """The folder exists, this user can write it, others cannot look in, and disk is left."""
    if not path.is_dir():
        return [Check("fail", f"{what} {path}", "missing",
                      f"create it: install -d -m 700 -o secroom {path}")]
    checks = []
    mode = stat.S_IMODE(path.stat().st_mode)
    if not os.access(path, os.W_OK | os.X_OK):
        checks.append(Check("fail", f"{what} {path}", "not writable by this user",
                            "chown it to the service's user"))
    elif mode & 0o007:
        checks.append(Check("warn", f"{what} {path}", f"mode {mode:04o}: others can list it",
                            f"chmod 700 {path}"))
    else:
        checks.append(ok(f"{what} {path}", f"writable, mode {mode:04o}"))
    usage = shutil.disk_usage(path)
    free = f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB"
    if usage.free < DISK_FAIL_BYTES:
        checks.append(Check("fail", f"disk of {path}", free,
                            "free space now: the journal refuses events when the disk is full "
                            "(and doors stay shut for accesses it cannot record)"))
    elif usage.free < DISK_WARN_BYTES or usage.free < usage.total * 0.05:
        checks.append(Check("warn", f"disk of {path}", free,
                            "free space (old logs, a full repository on the same disk)"))
    else:
        checks.append(ok(f"disk of {path}", free))
    return checks


# -- clock ----------------------------------------------------------------------------------
def _chrony_offset() -> float | None:
    """System time offset from NTP as chrony sees it (seconds), if chrony runs here."""
    chronyc = shutil.which("chronyc")
    if chronyc is None:
        return None
    try:
        out = subprocess.run([chronyc, "-c", "tracking"], capture_output=True, text=True,
                             timeout=5, check=True).stdout
        return float(out.split(",")[4])
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return None


def clock(mode: str = "auto") -> Check:
    state, _, maxerror = kernel_clock()
    offset = _chrony_offset()
    what = "clock"
    if offset is not None and abs(offset) > CLOCK_FAIL_S:
        return Check("fail", what, f"{offset:+.3f} s away from NTP (chrony)",
                     "let chrony step the clock (chronyc makestep) and check its sources")
    measured = f", offset {offset:+.6f} s (chrony)" if offset is not None else ""
    if state != "synced":
        bound = f" (max error {maxerror:.0f} s)" if maxerror is not None else ""
        return Check("warn", what, f"the kernel says not NTP-synchronised{bound}{measured}",
                     "install chrony or enable systemd-timesyncd and point it at the office's "
                     "NTP server; until then events are marked unsynced")
    if mode != "auto":
        return Check("warn", what, f"synchronised, but the config forces clock = {mode!r}",
                     'set clock = "auto" in [node] so events say what the kernel knows')
    return ok(what, f"NTP-synchronised{measured}")


# -- broker ---------------------------------------------------------------------------------
def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def broker(settings: MqttSettings, *, client_id: str) -> list[Check]:
    """Reachable; TLS handshake valid against the configured CA; credentials accepted."""
    where = f"broker {settings.host}:{settings.port}"
    try:
        sock = socket.create_connection((settings.host, settings.port), timeout=5)
    except OSError as exc:
        return [Check("fail", where, f"unreachable ({exc.strerror or exc})",
                      "start mosquitto there (systemctl status mosquitto), or fix [mqtt] "
                      "host/port and the firewall")]
    checks = [ok(where, "reachable")]
    with sock:
        tls = settings.tls
        if tls is None:
            level: Status = "warn" if _loopback(settings.host) else "fail"
            checks.append(Check(level, f"{where} TLS", "not configured",
                                "set [mqtt.tls] ca_file (the room's CA) and use the TLS "
                                "listener (8883): credentials and events cross the network"))
        else:
            checks.append(_handshake(sock, settings, where))
            if checks[-1].status == "fail":
                return checks
    if settings.password_file is not None:
        checks.append(private_file(settings.password_file, "MQTT password file"))
    checks.append(_credentials(settings, client_id, where))
    return checks


def _handshake(sock: socket.socket, settings: MqttSettings, where: str) -> Check:
    tls = settings.tls
    assert tls is not None
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file))
        if tls.cert_file is not None:
            context.load_cert_chain(str(tls.cert_file),
                                    str(tls.key_file) if tls.key_file else None)
    except (OSError, ssl.SSLError) as exc:
        return Check("fail", f"{where} TLS", f"cannot load the TLS files ({exc})",
                     f"check [mqtt.tls] ca_file {tls.ca_file} (PEM) and the client cert/key")
    try:
        with context.wrap_socket(sock, server_hostname=settings.host) as tls_sock:
            version = tls_sock.version()
    except ssl.SSLCertVerificationError as exc:
        return Check("fail", f"{where} TLS", f"the broker's certificate does not verify "
                     f"against {tls.ca_file}: {exc.verify_message}",
                     "give the node the room's CA (ca.crt), and a broker certificate issued "
                     f"by it for the name {settings.host!r}")
    except (OSError, ssl.SSLError) as exc:
        return Check("fail", f"{where} TLS", f"handshake failed ({exc})",
                     "is this the TLS listener's port (8883)? see hardware/mosquitto/")
    return ok(f"{where} TLS", f"{version}, certificate valid for {settings.host!r} "
              f"(CA {tls.ca_file})")


def _credentials(settings: MqttSettings, client_id: str, where: str) -> Check:
    done = threading.Event()
    link = MqttLink(settings.model_copy(update={"backoff_min_s": 5.0, "backoff_max_s": 5.0}),
                    client_id=client_id)
    link.on_connect = done.set
    try:
        link.start()
    except MqttError as exc:
        return Check("fail", f"{where} login", str(exc), "fix [mqtt] password_file / tls")
    try:
        deadline = time.monotonic() + BROKER_TIMEOUT_S
        while not done.wait(0.05):  # a refusal has no event of its own: poll last_error
            if link.stats.get("connect_failures") or time.monotonic() > deadline:
                break
        connected, error = link.connected.is_set(), link.last_error
    finally:
        link.stop()
    user = settings.username or "(anonymous)"
    if connected:
        return ok(f"{where} login", f"accepted as {user}")
    if error is None and settings.tls is None:
        return Check("fail", f"{where} login", "no answer to MQTT's CONNECT",
                     "this port may be a TLS listener: set [mqtt.tls] ca_file")
    return Check("fail", f"{where} login", f"refused for {user}: {error or 'no answer'}",
                 "check the user and its password file; `secroom broker config` on the "
                 "dashboard writes both (the user is the node's name)")
