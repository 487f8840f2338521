"""Without root the demo's pcscd runs in a user namespace through the unshare shim; the shim
adds exactly ``--user --map-root-user`` and the daemon then serves both virtual slots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dashboard.demo import userns
from tests.support import unavailable

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.integration
def test_pcscd_as_an_unprivileged_user() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user for the check")
    for binary in ("unshare", "pcscd", "su", "pcsc_scan"):
        if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
            unavailable(f"{binary} not installed")
    system_python = Path("/usr/bin/python3")
    if not system_python.exists():
        pytest.skip("no system python3 the unprivileged user can run")
    work = Path(tempfile.mkdtemp(prefix="secroom-userns-"))  # tmp_path's parents are 0700
    try:
        work.chmod(0o777)
        (work / "check.py").write_text(
            "import os, subprocess\n"
            "from pathlib import Path\n"
            "from dashboard.demo.userns import prepare\n"
            "from readers.pcscd_host import PcscdHost, free_port_pair\n"
            f"run = Path({str(work)!r})\n"
            "print('mode', prepare(run), flush=True)\n"
            "h = PcscdHost(run / 'pcscd', port=free_port_pair())\n"
            "h.start()\n"
            "try:\n"
            "    out = subprocess.run(['pcsc_scan', '-r'], env={**os.environ, **h.env},\n"
            "                         capture_output=True, text=True, timeout=20)\n"
            "    print(out.stdout, out.stderr, flush=True)\n"
            "finally:\n"
            "    h.stop()\n"
        )
        # the system python: the unprivileged user cannot reach this venv's interpreter, and
        # userns + pcscd_host need only the standard library
        done = subprocess.run(
            ["su", "nobody", "-s", "/bin/sh", "-c",
             f"cd {work} && PYTHONPATH={REPO} {system_python} {work / 'check.py'}"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if "Operation not permitted" in done.stderr and "mode" not in done.stdout:
            unavailable(f"no unprivileged user namespaces here: {done.stderr[-300:]}")
        assert "mode user namespace" in done.stdout, done.stdout + done.stderr
        assert "Virtual PCD 00 00" in done.stdout, done.stdout + done.stderr
        shim = (work / "bin" / "unshare").read_text()
        assert "--user --map-root-user" in shim
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_root_needs_no_shim(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("runs as root only")
    assert userns.prepare(tmp_path) == "root"
    assert not (tmp_path / "bin").exists()
    assert sys.executable
