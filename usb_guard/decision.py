"""The pure decision: may this USB device be authorised on this host now?

Non-storage interfaces go through the class rules (hubs and keyboards/mice are allowed by the
built-in rules, so nobody is locked out, even with no policy yet); other classes get the
policy's default. A device with a mass-storage interface is allowed only if it is a registered
medium, in a usable state, allowed on this host, not past ``usable_until``, and if none of its
other interfaces is refused (a stick with a hidden keyboard is blocked). Its medium token is then
checked by the agent, which picks the medium among ``candidates``. With per-interface control,
a composite device keeps its acceptable interfaces (a keyboard with a hidden storage interface
types, but its storage never appears): the rest go into ``refused_interfaces``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from usb_guard.policy import (
    DEFAULT_CLASS_RULES,
    MASS_STORAGE_CLASS,
    ClassRule,
    RegisteredMedium,
    UsbPolicy,
)
from usb_guard.sysfs import UsbDevice

Action = Literal["allow", "block", "readonly"]
# A device that claims a registered medium's identity but differs from it is blocked whole, even
# with per-interface control: its other interfaces (a hidden keyboard) are not to be trusted.
LOOKS_FORGED = frozenset({"descriptors_mismatch", "interfaces_mismatch"})


@dataclass(frozen=True)
class Verdict:
    action: Action
    rule: str
    reason: str = ""
    candidates: tuple[RegisteredMedium, ...] = ()
    refused_interfaces: tuple[str, ...] = ()  # interface types left unauthorised

    @property
    def authorize(self) -> bool:
        return self.action != "block"

    @property
    def needs_token_check(self) -> bool:
        return self.authorize and bool(self.candidates)

    @property
    def control_number(self) -> str | None:
        return self.candidates[0].control_number if len(self.candidates) == 1 else None


def _block(rule: str, reason: str, candidates: tuple[RegisteredMedium, ...] = ()) -> Verdict:
    return Verdict("block", rule, reason, candidates if len(candidates) == 1 else ())


@dataclass(frozen=True)
class _Classified:
    """The class rules applied to each non-storage interface."""

    labels: tuple[str, ...]  # rules that allowed an interface
    refused: tuple[str, ...]  # interfaces refused
    first_rule: str = ""
    first_reason: str = ""

    @property
    def allowed_rule(self) -> str:
        return "+".join(dict.fromkeys(self.labels)) or "default"


def _classify(interfaces: list[str], rules: tuple[ClassRule, ...], default: str) -> _Classified:
    labels: list[str] = []
    refused: list[str] = []
    first: tuple[str, str] | None = None
    for iface in interfaces:
        rule = next((r for r in rules if r.matches(iface)), None)
        if rule is None and default == "allow":
            labels.append("default")
        elif rule is None:
            refused.append(iface)
            first = first or ("default", f"no class rule allows interface {iface}")
        elif rule.action == "block":
            refused.append(iface)
            first = first or (rule.label, f"interface {iface} is blocked by rule {rule.label}")
        else:
            labels.append(rule.label)
    if first is None:
        return _Classified(tuple(labels), ())
    return _Classified(tuple(labels), tuple(refused), *first)


_Key = tuple[str, str, str | None]
_index_cache: tuple[UsbPolicy, dict[_Key, tuple[RegisteredMedium, ...]]] | None = None


def _media_index(policy: UsbPolicy) -> dict[_Key, tuple[RegisteredMedium, ...]]:
    """Media by (vendor, product, serial), computed once per policy object."""
    global _index_cache
    cached = _index_cache
    if cached is not None and cached[0] is policy:
        return cached[1]
    index: dict[_Key, tuple[RegisteredMedium, ...]] = {}
    for m in policy.media:
        key = (m.identity.vendor_id, m.identity.product_id, m.identity.serial)
        index[key] = (*index.get(key, ()), m)
    _index_cache = (policy, index)
    return index


def _matching_media(device: UsbDevice, policy: UsbPolicy) -> tuple[RegisteredMedium, ...]:
    if device.vendor_id is None or device.product_id is None:
        return ()
    return _media_index(policy).get((device.vendor_id, device.product_id, device.serial), ())


def decide(
    device: UsbDevice,
    policy: UsbPolicy | None,
    host: str,
    now: datetime,
    *,
    force_read_only: bool = False,
    per_interface: bool = False,
) -> Verdict:
    """The verdict on a device. With ``per_interface`` (the agent can authorise interfaces one
    by one), a device whose interfaces are only partly acceptable is allowed with the rest in
    ``refused_interfaces``; without it, any refused interface blocks the whole device."""
    if device.descriptors is None:
        return _block("malformed_descriptors", device.descriptor_error or "no descriptors")
    if device.vendor_id is None or device.product_id is None:
        return _block("malformed_ids", "idVendor/idProduct unreadable")
    parsed = device.descriptors.interfaces
    storage = tuple(str(i) for i in parsed if i.cls == MASS_STORAGE_CLASS)
    others = [str(i) for i in parsed if i.cls != MASS_STORAGE_CLASS]
    rules = policy.class_rules if policy is not None else DEFAULT_CLASS_RULES
    classified = _classify(others, rules, policy.default if policy is not None else "block")
    partial = per_interface and bool(classified.labels)
    if not storage:
        if not classified.refused:
            return Verdict("allow", classified.allowed_rule)
        if partial:
            return Verdict("allow", classified.allowed_rule,
                           f"interfaces refused: {' '.join(classified.refused)}",
                           refused_interfaces=classified.refused)
        return _block(classified.first_rule, classified.first_reason)
    medium = _medium_verdict(device, policy, host, now, force_read_only)
    if medium.action == "block":
        if partial and medium.rule not in LOOKS_FORGED:
            refused = storage + classified.refused
            return Verdict("allow", classified.allowed_rule,
                           f"{medium.rule}: {medium.reason}; interfaces refused: "
                           f"{' '.join(refused)}", refused_interfaces=refused)
        return medium
    if not classified.refused:
        return medium
    if per_interface:
        return replace(medium, refused_interfaces=classified.refused,
                       reason=f"{medium.reason}; interfaces refused: "
                              f"{' '.join(classified.refused)}")
    return Verdict("block", classified.first_rule,
                   f"storage with a refused extra interface: {classified.first_reason}")


def _medium_verdict(device: UsbDevice, policy: UsbPolicy | None, host: str, now: datetime,
                    force_read_only: bool) -> Verdict:
    """Is the mass-storage part a registered medium usable here and now?"""
    if policy is None:
        return _block("no_policy", "mass storage is blocked until the first policy arrives")
    candidates = _matching_media(device, policy)
    if not candidates:
        return _block("unregistered", "mass storage not in the media ledger")
    same_hash = tuple(
        m for m in candidates
        if m.identity.descriptors_sha256 in (None, device.descriptors_sha256)
    )
    if not same_hash:
        return _block("descriptors_mismatch", "descriptors differ from the registered medium",
                      candidates)
    device_ifaces = set(device.interfaces)
    same_ifaces = tuple(
        m for m in same_hash
        if not m.identity.interfaces or set(m.identity.interfaces) == device_ifaces
    )
    if not same_ifaces:
        return _block("interfaces_mismatch",
                      "interfaces differ from the registered medium (hidden keyboard?)", same_hash)
    usable = tuple(m for m in same_ifaces if m.state in policy.usable_states)
    if not usable:
        return _block(f"state:{same_ifaces[0].state}",
                      f"medium is {same_ifaces[0].state}, not usable", same_ifaces)
    on_host = tuple(m for m in usable if m.allowed_on(host))
    if not on_host:
        return _block("host_not_allowed", f"medium not allowed on host {host}", usable)
    current = tuple(m for m in on_host if m.usable_until is None or now <= m.usable_until)
    if not current:
        return _block("expired", "medium is past its usable-until time", on_host)
    read_only = force_read_only or any(m.read_only for m in current)
    numbers = [m.control_number for m in current]
    rule = "medium:" + ",".join(numbers[:5]) + (f",+{len(numbers) - 5}" if len(numbers) > 5 else "")
    return Verdict("readonly" if read_only else "allow", rule, "registered medium", current)
