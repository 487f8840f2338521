"""The host's daily state for host.health: disks, failed units, last update, clock, uptime.

Each probe reads what Debian/Ubuntu already keep (``shutil.disk_usage``, ``systemctl``, apt's
stamp and history, the kernel's NTP status) and says "not known" rather than guess when it
cannot.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from controller.clock import kernel_clock_state
from controller.host.events import DiskUse

APT_STAMP = Path("/var/lib/apt/periodic/update-success-stamp")
APT_HISTORY = Path("/var/log/apt/history.log")
_END = re.compile(r"^End-Date: (\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d)", re.M)


def disks(mounts: Iterable[Path]) -> list[DiskUse]:
    out, seen = [], set()
    for mount in mounts:
        try:
            usage = shutil.disk_usage(mount)
        except OSError:
            continue
        key = (usage.total, usage.used)
        if key in seen:
            continue
        seen.add(key)
        pct = 100.0 * usage.used / usage.total if usage.total else 0.0
        out.append(DiskUse(mount=str(mount)[:128], used_pct=round(pct, 1),
                           free_mb=usage.free // (1024 * 1024)))
    return out


def failed_units() -> tuple[list[str], bool]:
    """Names of failed systemd units, and whether systemd could be asked."""
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return [], False
    try:
        out = subprocess.run(
            [systemctl, "list-units", "--state=failed", "--plain", "--no-legend", "--no-pager"],
            capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return [], False
    if out.returncode != 0:
        return [], False
    return [line.split()[0][:128] for line in out.stdout.splitlines() if line.strip()][:64], True


def last_update(stamp: Path = APT_STAMP, history: Path = APT_HISTORY) -> datetime | None:
    """When packages were last updated: apt's history (last End-Date, local time), else the
    periodic update stamp's time."""
    try:
        text = history.read_text(encoding="utf-8", errors="replace")
        ends = _END.findall(text)
        if ends:
            local = datetime.strptime(" ".join(ends[-1].split()), "%Y-%m-%d %H:%M:%S")
            return local.astimezone(UTC)
    except OSError:
        pass
    try:
        return datetime.fromtimestamp(stamp.stat().st_mtime, UTC)
    except OSError:
        return None


def uptime_s(path: Path = Path("/proc/uptime")) -> float | None:
    try:
        return float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def clock_synced() -> bool:
    return kernel_clock_state() == "synced"
