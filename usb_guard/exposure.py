"""Letting user space see a checked medium: the mark the udev storage rule looks for.

``hardware/udev/79-secroom-usb-storage.rules`` hides every disk and partition below a USB device
(``UDISKS_IGNORE=1``, ``UDISKS_AUTO=0``, ``UDISKS_SYSTEM=1``, ``SYSTEMD_READY=0``, node owned by
root, mode 0600) unless the file ``<verified_dir>/<disk>.ok`` exists when udev runs its rules
for that device's event. udev runs the rules before it passes an event on, so udisks, a
desktop's automounter and systemd first hear of such a disk as hidden. The agent creates the
mark once the disk's token passed (and, for a read-only medium, once the disk and its partitions
are read-only), then has udev run its rules again by writing ``change`` to the disk's and its
partitions' sysfs ``uevent`` files, as ``udevadm trigger --action=change`` does. The rule
deletes the mark when the disk goes away; the agent clears every mark when it starts and checks
the media present again. (The ``.ok`` suffix keeps the rule closed should the name it builds
ever be empty: the directory itself exists.)
"""

from __future__ import annotations

import os
from pathlib import Path

from usb_guard.errors import ExposureError, SysfsError
from usb_guard.sysfs import BLOCK_NAME, Sysfs

MARK_SUFFIX = ".ok"


class Exposure:
    def __init__(self, directory: Path, sysfs: Sysfs) -> None:
        self.directory = Path(directory)
        self.sysfs = sysfs

    def _mark(self, disk: str) -> Path:
        if not BLOCK_NAME.fullmatch(disk):
            raise ExposureError(f"not a block device name: {disk[:40]!r}")
        return self.directory / f"{disk}{MARK_SUFFIX}"

    def reset(self) -> None:
        """Create the mark directory (root only writes it) and remove every mark in it."""
        try:
            self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
            for entry in os.scandir(self.directory):
                if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                    os.unlink(entry.path)
        except OSError as exc:
            raise ExposureError(f"cannot prepare {self.directory}: {exc.strerror}") from exc

    def expose(self, disk: str) -> None:
        """Mark ``disk`` checked, then have udev run its rules on it and its partitions."""
        mark = self._mark(disk)
        try:
            fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o644)
            os.close(fd)
        except OSError as exc:
            raise ExposureError(f"cannot mark {disk} in {self.directory}: {exc.strerror}") from exc
        try:
            self.sysfs.trigger_change(disk)
        except SysfsError as exc:
            raise ExposureError(f"cannot have udev look at {disk} again: {exc}") from exc

    def withdraw(self, disk: str) -> None:
        """Forget a disk's mark (it went away, or its medium failed a check)."""
        try:
            self._mark(disk).unlink(missing_ok=True)
        except OSError as exc:
            raise ExposureError(f"cannot remove the mark of {disk}: {exc.strerror}") from exc
