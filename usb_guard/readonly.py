"""Switching a block device to read-only (BLKROSET), behind a small protocol."""

from __future__ import annotations

import fcntl
import os
import struct
from typing import Protocol

from usb_guard.errors import ReadOnlyError
from usb_guard.medium_token import BlockDevice

BLKROSET = 0x125D  # _IO(0x12, 93)


class ReadOnlyControl(Protocol):
    def set_read_only(self, disk: BlockDevice) -> None: ...


class IoctlReadOnly:
    """The real control: ``blockdev --setro`` done in-process (needs CAP_SYS_ADMIN)."""

    def set_read_only(self, disk: BlockDevice) -> None:
        try:
            fd = os.open(disk.dev_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise ReadOnlyError(f"cannot open {disk.dev_path}: {exc.strerror}") from exc
        try:
            fcntl.ioctl(fd, BLKROSET, struct.pack("i", 1))
        except OSError as exc:
            raise ReadOnlyError(f"BLKROSET failed on {disk.dev_path}: {exc.strerror}") from exc
        finally:
            os.close(fd)
