"""Real PAM in tests: a service file run by pamtester under pam_wrapper (cwrap).

pam_wrapper (``LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=<dir>``)
makes libpam read its service files from the test's folder, so nothing under /etc/pam.d is
touched and it runs as any user. The stack is the one hardware/host-agent/pam ships, with
pam_matrix (pam_wrapper's password module, passdb ``user:password:service``) standing in for
pam_unix, and the real pam_exec running the real helper (controller/host/pam_client.py) under
Debian's ``/usr/bin/python3 -IS``, as on a room PC.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import require_binary, unavailable

HELPER = Path(__file__).resolve().parents[2] / "controller" / "host" / "pam_client.py"
SYSTEM_PYTHON = "/usr/bin/python3"
_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")


def _find(name: str, sub: str = "") -> str:
    for d in _LIB_DIRS:
        path = Path(d) / sub / name
        if path.exists():
            return str(path)
    unavailable(f"{name} not installed (apt-get install libpam-wrapper)")
    raise AssertionError("unreachable")


def card_stack(helper: str, socket: Path, password_module: str) -> str:
    """The auth lines of hardware/host-agent/pam, with ``password_module`` for pam_unix: the
    password first; then the helper once, ``card`` if it passed, ``password_failed`` if not."""
    run = f"pam_exec.so quiet {helper}"
    return "\n".join([
        f"auth [success=2 default=ignore] {password_module}",
        f"auth optional {run} password_failed --socket {socket}",
        "auth requisite pam_deny.so",
        f"auth [success=1 default=ignore] {run} card --socket {socket}",
        "auth requisite pam_deny.so",
        "auth required pam_permit.so",
        "account required pam_permit.so",
        "",
    ])


@dataclass
class PamResult:
    rc: int
    output: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


class PamService:
    """A PAM service ``name`` in ``workdir`` whose stack asks the agent on ``socket``."""

    def __init__(self, workdir: Path, socket: Path, *, name: str = "secroom-login",
                 passwords: dict[str, str] | None = None) -> None:
        self.pamtester = require_binary("pamtester", "/usr/bin/pamtester")
        self.wrapper = _find("libpam_wrapper.so")
        matrix = _find("pam_matrix.so", "pam_wrapper")
        if not Path(SYSTEM_PYTHON).exists():
            unavailable("/usr/bin/python3 is missing (the helper runs under Debian's python)")
        self.name = name
        self.dir = workdir / "pam.d"
        self.dir.mkdir(parents=True, exist_ok=True)
        passdb = workdir / "passdb"
        passdb.write_text("".join(f"{u}:{p}:{name}\n" for u, p in (passwords or {}).items()))
        helper = f"{SYSTEM_PYTHON} -IS {HELPER}"
        (self.dir / name).write_text(card_stack(helper, socket, f"{matrix} passdb={passdb}"))
        (self.dir / "other").write_text("auth required pam_deny.so\n")

    def authenticate(self, user: str, password: str, *, tty: str = "tty1", rhost: str = ""
                     ) -> PamResult:
        items = ["-I", f"tty={tty}"] + (["-I", f"rhost={rhost}"] if rhost else [])
        env = {**os.environ, "LD_PRELOAD": self.wrapper, "PAM_WRAPPER": "1",
               "PAM_WRAPPER_SERVICE_DIR": str(self.dir)}
        done = subprocess.run([self.pamtester, "-v", *items, self.name, user, "authenticate"],
                              input=password + "\n", capture_output=True, text=True, env=env,
                              timeout=60, check=False)
        return PamResult(done.returncode, done.stdout + done.stderr)
