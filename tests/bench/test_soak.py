"""The whole-room soak (tests/bench/soak.py --short) as a test: real processes and real faults
for about 70 s; nothing lost or stored twice, no door opened for a denied card, every injected
fault visible. Runs as a subprocess (it starts and kills a dozen processes of its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import unavailable

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_short_soak_loses_nothing_opens_nothing_and_sees_every_fault(tmp_path: Path) -> None:
    if "SECROOM_TEST_PG_URL" not in os.environ:
        unavailable("SECROOM_TEST_PG_URL is not set (the soak's dashboard runs on PostgreSQL)")
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests/bench/soak.py"), "--short"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out = done.stdout
    if done.returncode == 3:
        unavailable(out.strip().splitlines()[-1] if out.strip() else done.stderr[-500:])
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no RESULT line (exit {done.returncode}):\n{out[-3000:]}\n{done.stderr[-3000:]}"
    result = json.loads(lines[-1].removeprefix("RESULT "))
    report = out[-4000:]
    assert result["produced"] > 1000, report
    assert result["lost"] == 0, report
    assert result["duplicated"] == 0, report
    assert result["chain_breaks"] == 0, report
    assert result["denied_but_opened"] == 0, report
    assert result["opened_journal_full"] == 0, report  # fail closed: no unrecorded entry
    assert result["faults"] >= 7 and result["faults_unseen"] == [], report
    assert result["taps_pcsc"] > 0, "some taps take the real PC/SC path"
    assert result["rss_growth_mb"] is not None
    assert result["rss_growth_mb"] <= result["rss_bound_mb"], report
    assert done.returncode == 0, report
