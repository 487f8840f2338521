"""What a disk below an authorised USB device goes through before user space may see it.

udev's storage rule keeps every such disk hidden (``exposure``). ``DiskGate.admit`` then, in
this order: refuses a disk below a device that is not a registered medium; makes the disk and
its partitions read-only if the verdict says so; checks the medium token (``token_check``); and
only then marks the disk verified so that udev shows it. A failed step returns what the agent
emits when it de-authorises the device; nothing of that disk was shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from usb_guard.config import UsbAgentConfig
from usb_guard.decision import Verdict
from usb_guard.errors import ExposureError, ReadOnlyError, SysfsError
from usb_guard.events import VerdictName
from usb_guard.exposure import Exposure
from usb_guard.medium_token import BlockDevice, TokenReader
from usb_guard.readonly import ReadOnlyControl
from usb_guard.sysfs import Sysfs, UsbDevice
from usb_guard.token_check import check_token

UNHIDDEN_NOTE = (" (udev did not hide this disk before its check: install "
                 "79-secroom-usb-storage.rules)")


@dataclass(frozen=True)
class Admission:
    shown: bool
    verdict: VerdictName  # the verdict to emit (a refusal de-authorises the device)
    rule: str
    control_number: str | None
    reason: str  # "" when shown without a token check (token_check = false): nothing to emit
    token: bool | None = None  # True: token verified, False: token refused, None: not checked


class DiskGate:
    def __init__(self, config: UsbAgentConfig, sysfs: Sysfs, token_reader: TokenReader,
                 read_only: ReadOnlyControl) -> None:
        self.config = config
        self.sysfs = sysfs
        self.token_reader = token_reader
        self.read_only = read_only
        self.exposure = Exposure(config.verified_path, sysfs)
        self.read_only_disks: dict[str, set[str]] = {}  # disk -> partitions made read-only

    def admit(self, device: UsbDevice, verdict: Verdict, disk: BlockDevice,
              hidden: bool = True) -> Admission:
        """Check a new disk of ``device`` (decided ``verdict``) and show it if it passes."""
        self.read_only_disks.pop(disk.name, None)  # a new disk may reuse an old name
        note = "" if hidden else UNHIDDEN_NOTE
        number = verdict.control_number
        if not verdict.candidates:  # e.g. a vendor-class interface a storage driver took
            return Admission(False, "block", "unexpected_disk", None, "a disk appeared below a "
                             "device that is not a registered medium" + note)
        if verdict.action == "readonly":
            try:
                self._make_read_only(disk)
            except (ReadOnlyError, SysfsError) as exc:
                return Admission(False, "block", "readonly_failed", number,
                                 f"read-only could not be enforced: {exc}")
        reason, token = "", None
        if self.config.token_check:
            check = check_token(self.sysfs, self.token_reader, device, disk, verdict.candidates,
                                accept_unbound=self.config.accept_unbound_tokens)
            if check.medium is None:
                return Admission(False, "removed_token_mismatch", verdict.rule, number,
                                 check.reason + note, token=False)
            number, reason, token = check.medium.control_number, check.reason + note, True
        try:
            self.exposure.expose(disk.name)
        except ExposureError as exc:
            return Admission(False, "block", "expose_failed", number,
                             f"the checked disk could not be shown: {exc}", token)
        return Admission(True, verdict.action, f"medium:{number}", number, reason, token)

    def _make_read_only(self, disk: BlockDevice) -> None:
        """The disk and the partitions it has now, before anything of it is shown."""
        parts: set[str] = set()
        self.read_only.set_read_only(disk)
        for part in self.sysfs.partitions(disk.name):
            self.read_only.set_read_only(BlockDevice(part, self.config.dev_root / part,
                                                     f"{disk.sys_path}/{part}"))
            parts.add(part)
        self.read_only_disks[disk.name] = parts

    def partition_added(self, name: str, sys_path: str) -> None:
        """A partition of a read-only disk that was not there at the check (a re-read table);
        ReadOnlyError if it cannot be made read-only."""
        done = self.read_only_disks.get(Path(sys_path).parent.name)
        if done is not None and name not in done:
            self.read_only.set_read_only(BlockDevice(name, self.config.dev_root / name,
                                                     sys_path))
            done.add(name)

    def disk_removed(self, name: str) -> None:
        self.read_only_disks.pop(name, None)
        self.exposure.withdraw(name)
