"""The enforcement agent: udev events in, ``authorized`` written, events out.

The loop is thin: read the device from sysfs, ``decide`` (pure), write ``authorized``, emit.
Storage that was authorised is checked once its disk appears: the token block is read from the
raw device and compared with the candidates' digests, recomputed for the device the kernel
describes (USB ids, serial, capacity: a token copied onto another stick fails); a mismatch
de-authorises the device again.
Every failure caused by a device or an event is counted in ``stats`` and never stops the loop.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from usb_guard.config import NEW_DEVICE_MODES, UsbAgentConfig
from usb_guard.decision import Verdict, decide
from usb_guard.errors import ReadOnlyError, UdevError, UsbGuardError
from usb_guard.events import (
    KIND_INSERTED,
    KIND_REMOVED,
    Emit,
    Phase,
    UsbInserted,
    UsbRemoved,
    VerdictName,
    mask_serial,
    serial_sha256,
)
from usb_guard.medium_token import BlockDevice, RawTokenReader, TokenReader
from usb_guard.policy import UsbPolicy
from usb_guard.readonly import IoctlReadOnly, ReadOnlyControl
from usb_guard.sysfs import (
    BLOCK_NAME,
    INTERFACE_NAME,
    ROOT_HUB_NAME,
    Sysfs,
    UsbDevice,
    usb_device_of,
    valid_device_name,
)
from usb_guard.token_check import check_token
from usb_guard.udev import UdevSource, UEvent

PolicyProvider = Callable[[], UsbPolicy | None]
MAX_SOURCE_FAILURES = 10  # consecutive udev failures before the agent gives up


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AgentStats:
    events: int = 0
    allowed: int = 0
    blocked: int = 0
    token_verified: int = 0
    token_mismatches: int = 0
    malformed_devices: int = 0
    bad_events: int = 0
    errors: int = 0
    last_error: str = ""


@dataclass
class _Seen:
    device: UsbDevice
    verdict: Verdict
    control_number: str | None = None
    token_ok: bool | None = None


@dataclass
class _State:
    present: dict[str, _Seen] = field(default_factory=dict)
    pending_token: dict[str, Verdict] = field(default_factory=dict)
    read_only_disks: set[str] = field(default_factory=set)


class Agent:
    def __init__(
        self,
        config: UsbAgentConfig,
        *,
        emit: Emit,
        policy_provider: PolicyProvider,
        source: UdevSource,
        token_reader: TokenReader | None = None,
        read_only: ReadOnlyControl | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.emit = emit
        self.policy_provider = policy_provider
        self.source = source
        self.sysfs = Sysfs(config.sysfs_root)
        self.token_reader = token_reader or RawTokenReader(config.token_offset)
        self.read_only = read_only or IoctlReadOnly()
        self.clock = clock
        self.stats = AgentStats()
        self._state = _State()
        self._policy: UsbPolicy | None = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Set new devices to start unauthorised, then decide on every present device."""
        if self.config.interface_control:
            self.sysfs.set_interface_authorized_default(0)
        mode = self.config.new_devices
        if mode != "unchanged":
            self.sysfs.set_authorized_default(NEW_DEVICE_MODES[mode])
        self._policy = self.policy_provider()
        self._scan("startup_scan", only_changes=False)

    def run(self, stop: threading.Event) -> None:
        self.start()
        failures = 0
        while not stop.is_set():
            try:
                event = self.source.receive(self.config.poll_seconds)
            except UdevError as exc:
                # e.g. ENOBUFS after an event storm: events were lost, so look at sysfs again
                failures += 1
                self.stats.errors += 1
                self.stats.last_error = str(exc)[:200]
                if failures > MAX_SOURCE_FAILURES:
                    raise
                self._guard(lambda: self._scan("rescan", only_changes=True))
                continue
            failures = 0
            if event is not None:
                self.handle(event)
            self.check_policy()

    def check_policy(self) -> bool:
        """Re-decide on present devices if the policy changed; True if it did."""
        policy = self.policy_provider()
        if policy is self._policy or policy == self._policy:
            self._policy = policy
            return False
        self._policy = policy
        self._guard(lambda: self._scan("policy_change", only_changes=True))
        return True

    # -- events -----------------------------------------------------------------------------
    def handle(self, event: UEvent) -> None:
        """Handle one uevent; bad events and vanished devices are counted, never raised."""
        self.stats.events += 1
        self._guard(lambda: self._dispatch(event))

    def _guard(self, action: Callable[[], None]) -> None:
        try:
            action()
        except UsbGuardError as exc:
            self.stats.errors += 1
            self.stats.last_error = str(exc)[:200]

    def _dispatch(self, event: UEvent) -> None:
        action = event.action if isinstance(event.action, str) else ""
        subsystem = event.subsystem if isinstance(event.subsystem, str) else ""
        name = _event_name(event)
        if subsystem == "usb":
            if event.devtype == "usb_interface" and action == "add" and name is not None:
                if not INTERFACE_NAME.fullmatch(name):
                    self.stats.bad_events += 1
                    return
                self._on_interface(name)
                return
            if event.devtype not in (None, "usb_device") or name is None:
                return  # interfaces and unnamed events carry nothing to decide
            if not valid_device_name(name):
                if not (ROOT_HUB_NAME.fullmatch(name) or INTERFACE_NAME.fullmatch(name)):
                    self.stats.bad_events += 1
                return
            if action == "add":
                self._on_add(name, "insert")
            elif action == "remove":
                self._on_remove(name)
        elif subsystem == "block" and action == "add" and name is not None:
            if not BLOCK_NAME.fullmatch(name) or not isinstance(event.sys_path, str):
                self.stats.bad_events += 1
                return
            if event.devtype == "disk":
                self._on_disk(name, event.sys_path)
            elif event.devtype == "partition":
                self._on_partition(name, event.sys_path)

    def _on_add(self, name: str, phase: Phase, only_changes: bool = False) -> None:
        device = self.sysfs.read_device(name)
        if device.descriptor_error is not None:
            self.stats.malformed_devices += 1
        # self._policy is left alone: check_policy must still see a change and re-decide on
        # the devices already present.
        verdict = decide(device, self.policy_provider(), self.config.host, self.clock(),
                         force_read_only=self.config.force_read_only,
                         per_interface=self.config.interface_control)
        seen = self._state.present.get(name)
        if only_changes and seen is not None and (
            seen.token_ok is False  # failed its token check: blocked until unplugged
            or _same(seen.verdict, verdict)
        ):
            return
        check = verdict.needs_token_check and self.config.token_check
        if check:
            self._state.pending_token[name] = verdict
        else:
            self._state.pending_token.pop(name, None)
        self._state.present[name] = _Seen(device, verdict, verdict.control_number)
        self.sysfs.set_authorized(name, verdict.authorize)
        if verdict.authorize:
            self.stats.allowed += 1
        else:
            self.stats.blocked += 1
        self._emit_inserted(device, verdict.action, phase, verdict.rule, verdict.control_number,
                            verdict.reason, verdict.refused_interfaces)
        if phase == "insert" or not verdict.authorize:
            return  # a new device has no interfaces yet; a blocked one loses them
        if self.config.interface_control:
            for interface in self.sysfs.interface_names(name):
                self._apply_interface(interface, verdict)
        if check:
            for disk, sys_path in self._disks_under(name):
                self._on_disk(disk, sys_path)

    def _on_interface(self, interface: str) -> None:
        """An interface of an authorised device appeared: authorise it unless refused."""
        if not self.config.interface_control:
            return
        seen = self._state.present.get(interface.split(":", 1)[0])
        if seen is not None:  # else: not decided by us; it stays unauthorised
            self._apply_interface(interface, seen.verdict)

    def _apply_interface(self, interface: str, verdict: Verdict) -> None:
        allowed = verdict.authorize and (
            self.sysfs.interface_type(interface) not in verdict.refused_interfaces)
        self.sysfs.set_interface_authorized(interface, allowed)

    def _on_remove(self, name: str) -> None:
        seen = self._state.present.pop(name, None)
        self._state.pending_token.pop(name, None)
        device = seen.device if seen else None
        self.emit(KIND_REMOVED, UsbRemoved(
            host=self.config.host,
            device=name,
            control_number=seen.control_number if seen else None,
            vendor_id=device.vendor_id if device else None,
            product_id=device.product_id if device else None,
        ))

    def _on_disk(self, disk_name: str, sys_path: str) -> None:
        self._state.read_only_disks.discard(disk_name)  # a new disk may reuse an old name
        usb = usb_device_of(sys_path)
        if usb is None or usb not in self._state.pending_token:
            return  # not a medium waiting for its token check (internal disk, already checked)
        verdict = self._state.pending_token.pop(usb)
        seen = self._state.present[usb]
        disk = BlockDevice(disk_name, self.config.dev_root / disk_name, sys_path)
        if verdict.action == "readonly":
            try:
                self.read_only.set_read_only(disk)
                self._state.read_only_disks.add(disk_name)
            except ReadOnlyError as exc:
                self._deauthorize(usb, seen, "block", "readonly_failed", verdict.control_number,
                                  f"read-only could not be enforced: {exc}")
                return
        check = check_token(self.sysfs, self.token_reader, seen.device, disk,
                            verdict.candidates, accept_unbound=self.config.accept_unbound_tokens)
        match = check.medium
        if match is None:
            self.stats.token_mismatches += 1
            self._deauthorize(usb, seen, "removed_token_mismatch", verdict.rule,
                              verdict.control_number, check.reason)
            return
        self.stats.token_verified += 1
        seen.control_number, seen.token_ok = match.control_number, True
        self._emit_inserted(seen.device, verdict.action, "token_check",
                            f"medium:{match.control_number}", match.control_number, check.reason)

    def _on_partition(self, name: str, sys_path: str) -> None:
        parent = Path(sys_path).parent.name
        if parent in self._state.read_only_disks:
            disk = BlockDevice(name, self.config.dev_root / name, sys_path)
            try:
                self.read_only.set_read_only(disk)
            except ReadOnlyError as exc:
                usb = usb_device_of(sys_path)
                seen = self._state.present.get(usb or "")
                if usb is not None and seen is not None:
                    self._deauthorize(usb, seen, "block", "readonly_failed",
                                      seen.control_number, f"read-only partition failed: {exc}")

    def _deauthorize(self, usb: str, seen: _Seen, verdict: VerdictName, rule: str,
                     control_number: str | None, reason: str) -> None:
        seen.token_ok = False
        seen.verdict = Verdict("block", rule, reason)
        self.sysfs.set_authorized(usb, False)
        self.stats.blocked += 1
        self._emit_inserted(seen.device, verdict, "token_check", rule, control_number, reason)

    # -- helpers ----------------------------------------------------------------------------
    def _scan(self, phase: Phase, only_changes: bool) -> None:
        names = self.sysfs.device_names()
        for name in names:
            self._guard(lambda n=name: self._on_add(n, phase, only_changes))  # type: ignore[misc]
        for gone in set(self._state.present) - set(names):
            self._on_remove(gone)

    def _disks_under(self, usb: str) -> list[tuple[str, str]]:
        block_dir = self.sysfs.root / "block"
        try:
            entries = os.listdir(block_dir)
        except OSError:
            return []
        found = []
        for entry in entries:
            try:
                target = os.readlink(block_dir / entry)
            except OSError:
                continue
            if BLOCK_NAME.fullmatch(entry) and usb_device_of(target) == usb:
                found.append((entry, target))
        return found

    def _emit_inserted(self, device: UsbDevice, verdict: VerdictName, phase: Phase, rule: str,
                       control_number: str | None, reason: str,
                       refused: tuple[str, ...] = ()) -> None:
        self.emit(KIND_INSERTED, UsbInserted(
            verdict=verdict,
            phase=phase,
            rule=rule,
            control_number=control_number,
            host=self.config.host,
            device=device.name,
            vendor_id=device.vendor_id,
            product_id=device.product_id,
            serial_sha256=serial_sha256(device.serial),
            serial_masked=mask_serial(device.serial),
            interfaces=device.interfaces,
            refused_interfaces=refused,
            reason=reason[:200],
        ))


def _same(old: Verdict, new: Verdict) -> bool:
    return (old.action, old.rule, old.refused_interfaces) == (
        new.action, new.rule, new.refused_interfaces)


def _event_name(event: UEvent) -> str | None:
    name = event.sys_name
    if not isinstance(name, str) or not name:
        path = event.sys_path
        name = path.rstrip("/").rsplit("/", 1)[-1] if isinstance(path, str) and path else None
    return name
