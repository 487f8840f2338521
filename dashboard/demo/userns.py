"""Running the demo without root: the private pcscd needs its own mount namespace.

readers/pcscd_host.py starts ``unshare --mount ... pcscd`` (bind-mounting a private folder over
/run), which only root may do. A normal user may do the same inside a user namespace
(``unshare --user --map-root-user --mount``) where the kernel allows unprivileged user
namespaces (Debian 11+ and Raspberry Pi OS do by default). For a non-root demo this module puts
a two-line ``unshare`` shim adding ``--user --map-root-user`` first on the demo's PATH; the
daemon then runs as the user, and clients outside the namespace reach its socket as usual.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

NEEDED = (
    "the private card-reader daemon (pcscd) needs its own mount namespace: run the demo as "
    "root (sudo make demo), or allow unprivileged user namespaces "
    "(sudo sysctl -w kernel.unprivileged_userns_clone=1 on Debian; "
    "sudo sysctl -w user.max_user_namespaces=15000 where it is 0)"
)


class UserNamespaceUnavailable(RuntimeError):
    pass


def prepare(run_dir: Path) -> str:
    """Make ``unshare --mount`` work for this process's children; returns how."""
    if os.geteuid() == 0:
        return "root"
    real = shutil.which("unshare")
    if real is None:
        raise UserNamespaceUnavailable("unshare (util-linux) not installed")
    probe = subprocess.run([real, "--user", "--map-root-user", "--mount", "true"],
                           capture_output=True, text=True, timeout=10, check=False)
    if probe.returncode != 0:
        raise UserNamespaceUnavailable(f"{NEEDED} ({probe.stderr.strip()[:200]})")
    shim_dir = run_dir / "bin"
    shim_dir.mkdir(parents=True, exist_ok=True)
    shim = shim_dir / "unshare"
    shim.write_text(f'#!/bin/sh\nexec "{real}" --user --map-root-user "$@"\n')
    shim.chmod(0o755)
    os.environ["PATH"] = f"{shim_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    return "user namespace"
