"""Real PAM in tests: a service file run by pamtester under pam_wrapper (cwrap).

pam_wrapper (``LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=<dir>``)
makes libpam read its service files from the test's folder, so nothing under /etc/pam.d is
touched and it runs as any user. The stack is the file hardware/host-agent/pam ships (read
by ``card_stack``), with pam_matrix (pam_wrapper's password module, passdb
``user:password:service``) standing in for pam_unix, and the real pam_exec running the real
helper: the C one (hardware/host-agent/pam/secroom-pam-card.c), built here with gcc by the
shipped build script into a temporary folder, as installed on a room PC; ``python_helper()``
gives the fallback (controller/host/pam_client.py under Debian's ``/usr/bin/python3 -IS``).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import require_binary, unavailable

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "controller" / "host" / "pam_client.py"  # the Python fallback
HELPER_SOURCE = ROOT / "hardware" / "host-agent" / "pam" / "secroom-pam-card.c"
BUILD_SCRIPT = ROOT / "hardware" / "host-agent" / "build-pam-helper.sh"
SYSTEM_PYTHON = "/usr/bin/python3"
_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")


def _find(name: str, sub: str = "") -> str:
    for d in _LIB_DIRS:
        path = Path(d) / sub / name
        if path.exists():
            return str(path)
    unavailable(f"{name} not installed (apt-get install libpam-wrapper)")
    raise AssertionError("unreachable")


@functools.cache
def _build_c_helper() -> str:
    out = Path(tempfile.mkdtemp(prefix="secroom-pam-helper-")) / "secroom-pam-card"
    atexit.register(shutil.rmtree, out.parent, True)
    # another user (a screen locker's) runs it in some tests: the folder must be reachable
    out.parent.chmod(0o755)
    done = subprocess.run(["bash", str(BUILD_SCRIPT), str(out)], capture_output=True,
                          text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building the C PAM helper failed:\n{done.stdout}{done.stderr}")
    return str(out)


def c_helper() -> list[str]:
    """The command of the C helper, built once per test run into a temporary folder (never in
    the source tree). No gcc: skipped, or failed with an install hint in CI."""
    if shutil.which(os.environ.get("CC", "gcc")) is None:
        unavailable("gcc not installed: the C PAM helper is built by the tests "
                    "(apt-get install gcc)")
    return [_build_c_helper()]


def python_helper() -> list[str]:
    """The command of the Python fallback under Debian's python, as installed."""
    if not Path(SYSTEM_PYTHON).exists():
        unavailable("/usr/bin/python3 is missing (the fallback helper runs under Debian's python)")
    return [SYSTEM_PYTHON, "-IS", str(HELPER)]


SHIPPED = Path(__file__).resolve().parents[2] / "hardware" / "host-agent" / "pam" / "secroom-card"
INSTALLED_HELPER = "/usr/lib/secroom/secroom-pam-card"


def card_stack(helper: str, socket: Path, password_module: str) -> str:
    """The shipped hardware/host-agent/pam/secroom-card, as tests run it: ``password_module``
    for pam_unix, the helper from the source tree, the agent's socket of the test."""
    lines = []
    for line in SHIPPED.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        line = line.replace("pam_unix.so nullok", password_module)
        if INSTALLED_HELPER in line:
            line = line.replace(INSTALLED_HELPER, helper) + f" --socket {socket}"
        lines.append(line)
    return "\n".join([*lines, "account required pam_permit.so", ""])


def common_auth_with_profile(helper: str, socket: Path, password_module: str) -> str:
    """Debian's common-auth as pam-auth-update writes it with the shipped profile enabled:
    the primary block (the password), pam_deny, pam_permit, then the profile's lines."""
    profile = (SHIPPED.parent / "secroom-card.pam-config").read_text()
    auth = profile.split("Auth:\n", 1)[1]
    extra = []
    for line in auth.splitlines():
        if not line.strip():
            continue
        control, module = line.strip().split("\t", 1)
        module = module.replace(INSTALLED_HELPER, helper)
        extra.append(f"auth {control} {module}" + (f" --socket {socket}" if helper in module
                                                    else ""))
    return "\n".join([f"auth [success=1 default=ignore] {password_module}",
                      "auth requisite pam_deny.so", "auth required pam_permit.so", *extra,
                      "account required pam_permit.so", ""])


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
                 passwords: dict[str, str] | None = None, stack: Any = None,
                 helper: list[str] | None = None) -> None:
        self.pamtester = require_binary("pamtester", "/usr/bin/pamtester")
        self.wrapper = _find("libpam_wrapper.so")
        matrix = _find("pam_matrix.so", "pam_wrapper")
        self.helper = helper or c_helper()
        self.name = name
        self.dir = workdir / "pam.d"
        self.dir.mkdir(parents=True, exist_ok=True)
        passdb = workdir / "passdb"
        passdb.write_text("".join(f"{u}:{p}:{name}\n" for u, p in (passwords or {}).items()))
        build = stack or card_stack
        (self.dir / name).write_text(build(" ".join(self.helper), socket,
                                           f"{matrix} passdb={passdb}"))
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
