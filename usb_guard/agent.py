"""The enforcement agent: udev events in, ``authorized`` written, events out.

The loop is thin: read the device from sysfs, ``decide`` (pure), write ``authorized``, emit.
Storage that was authorised is checked once its disk appears, while udev's storage rule still
hides that disk from user space (``exposure``): the token block is read from the raw device and
compared with the candidates' digests, recomputed for the device the kernel describes (USB ids,
serial, capacity: a token copied onto another stick fails). A mismatch de-authorises the device
again (its disk was never shown); a match marks the disk verified and has udev show it.
Every failure caused by a device or an event is counted in ``stats`` and never stops the loop.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from usb_guard.config import NEW_DEVICE_MODES, UsbAgentConfig
from usb_guard.decision import Verdict, decide
from usb_guard.disk_gate import DiskGate
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
from usb_guard.udev import UdevSource, UEvent

PolicyProvider = Callable[[], UsbPolicy | None]
HIDDEN = "hidden"  # SECROOM_STORAGE, set by hardware/udev/79-secroom-usb-storage.rules
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
    unhidden_disks: int = 0  # USB disks udev's storage rule did not hide (rule not installed)
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
        self.disks = DiskGate(config, self.sysfs, self.token_reader, self.read_only)
        self.clock = clock
        self.stats = AgentStats()
        self._state = _State()
        self._policy: UsbPolicy | None = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Set new devices to start unauthorised, forget which disks were shown, then decide on
        every present device (media present are checked again)."""
        self.disks.exposure.reset()
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
        elif subsystem == "block" and action in ("add", "remove") and name is not None:
            if not BLOCK_NAME.fullmatch(name) or not isinstance(event.sys_path, str):
                self.stats.bad_events += 1
                return
            if action == "remove":
                if event.devtype == "disk":
                    self.disks.disk_removed(name)
            elif event.devtype == "disk":
                props = event.properties if isinstance(event.properties, Mapping) else {}
                self._on_disk(name, event.sys_path, props.get("SECROOM_STORAGE") == HIDDEN)
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
        if verdict.candidates:  # storage of a medium: its disks (if any) are checked again
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
        device = seen.device if seen else None
        self.emit(KIND_REMOVED, UsbRemoved(
            host=self.config.host,
            device=name,
            control_number=seen.control_number if seen else None,
            vendor_id=device.vendor_id if device else None,
            product_id=device.product_id if device else None,
        ))

    def _on_disk(self, disk_name: str, sys_path: str, hidden: bool = True) -> None:
        """A disk appeared below a USB device, hidden by udev until ``disks`` shows it."""
        usb = usb_device_of(sys_path)
        seen = self._state.present.get(usb or "")
        if usb is None or seen is None or seen.token_ok is False or not seen.verdict.authorize:
            return  # not below a device we authorised (an internal disk), or refused already
        self.stats.unhidden_disks += not hidden
        disk = BlockDevice(disk_name, self.config.dev_root / disk_name, sys_path)
        result = self.disks.admit(seen.device, seen.verdict, disk, hidden)
        if result.token is not None:
            self.stats.token_verified += result.token
            self.stats.token_mismatches += not result.token
        if not result.shown:
            self._deauthorize(usb, seen, result.verdict, result.rule, result.control_number,
                              result.reason)
            return
        if result.token:
            seen.control_number, seen.token_ok = result.control_number, True
        if result.reason:
            self._emit_inserted(seen.device, result.verdict, "token_check", result.rule,
                                result.control_number, result.reason)

    def _on_partition(self, name: str, sys_path: str) -> None:
        try:
            self.disks.partition_added(name, sys_path)
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
