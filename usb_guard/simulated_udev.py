"""What udev does with the simulated host's block devices, and when user space may see them.

On a room host, ``hardware/udev/79-secroom-usb-storage.rules`` runs on every event of a disk or
partition below a USB device, before udev passes the event on to anyone (udisks, a desktop's
automounter, systemd, the agent). It leaves the device *exposed* (shown by udisks, mountable by
the desktop user, "ready" for systemd) only if the agent's mark ``<verified_dir>/<disk>.ok``
exists at that moment (it then sets ``SECROOM_STORAGE=verified``); otherwise it sets
``SECROOM_STORAGE=hidden``, ``UDISKS_IGNORE=1``, ``UDISKS_AUTO=0``, ``UDISKS_SYSTEM=1`` and
``SYSTEMD_READY=0`` and keeps the node root-only. On ``remove`` it deletes the disk's mark.
The agent marks a disk after its token passes and then writes ``change`` to the disk's and its
partitions' ``uevent`` files (what ``udevadm trigger`` does), so udev runs the rule again and
exposes them.

``UdevModel`` applies that rule to each block event as it leaves the simulated source, and
keeps a ``timeline`` (``("exposed", "sdb1")``, ``("hidden", …)``, ``("removed", …)``), to which
tests add their own entries (``note``), so they can check what happened in which order.
Without the rule (``rule_installed=False``, as before it existed) every disk is exposed as soon
as udev sees it.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

from usb_guard.exposure import MARK_SUFFIX
from usb_guard.udev import UEvent

VERIFIED_SUBDIR = "run/secroom/usb-verified"  # under the simulated host's root, like /run/...


class UdevModel:
    def __init__(self, verified_dir: Path, rule_installed: bool = True) -> None:
        self.verified_dir = verified_dir
        self.rule_installed = rule_installed
        self.timeline: list[tuple[str, str]] = []
        self._exposed: set[str] = set()

    def note(self, what: str, subject: str) -> None:
        self.timeline.append((what, subject))

    def exposed(self, node: str) -> bool:
        return node in self._exposed

    def process(self, event: UEvent) -> UEvent:
        """Run the storage rule on a block event, as udev does before passing it on; returns
        the event with the properties the rule set."""
        name = event.sys_name
        if event.subsystem != "block" or not name or not event.sys_path:
            return event
        disk = name if event.devtype == "disk" else Path(event.sys_path).parent.name
        mark = self.verified_dir / f"{disk}{MARK_SUFFIX}"
        if event.action == "remove":
            if name in self._exposed:
                self._exposed.discard(name)
            self.note("removed", name)
            if self.rule_installed and event.devtype == "disk":
                with contextlib.suppress(OSError):  # the rule's RUN+="/bin/rm -f ..."
                    mark.unlink()
            return event
        if event.action not in ("add", "change"):
            return event
        hidden = self.rule_installed and not mark.exists()
        if not hidden and name not in self._exposed:
            self._exposed.add(name)
            self.note("exposed", name)
        elif hidden and name in self._exposed:
            self._exposed.discard(name)
            self.note("hidden", name)
        if not self.rule_installed:
            return event
        state = "hidden" if hidden else "verified"
        return replace(event, properties={**event.properties, "SECROOM_STORAGE": state})


def uevent_text(name: str, devtype: str) -> str:
    """What a block device's sysfs ``uevent`` file reads back (a write there is a trigger)."""
    return f"DEVTYPE={devtype}\nDEVNAME={name}\n"


def written_action(path: Path, expected: str) -> str | None:
    """The action written to a ``uevent`` file since it was last reset, if any."""
    try:
        text = path.read_text()
    except OSError:
        return None
    if text == expected:
        return None
    path.write_text(expected)
    word = text.strip().split(" ", 1)[0] if text.strip() else ""
    return word if word in ("add", "change") else None
