"""One node's slice of the site policy: only what that node decides on, cards keyed-hashed.

A door gateway gets its doors, the groups' windows for them and the cards of the people who may
pass them; a print station its printers and their people (with their CUPS user names); a host
agent its host's rules (with the people's local accounts) and, with USB, the media. Nobody else
is in the slice; names are replaced by ids (no node shows a name). Card UIDs become
``controller.policy.card_digest`` under the node's own card key (``card_key_for``: derived
from the dashboard's signing key, handed to the node once, ``secroom policy card-key``): a
slice read off the broker or a node's disk names no card. What a node serves is its *scope*,
which it declares in its state message (``NodeScope.declared``).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.card_keys import seal
from controller.keys import derive_secret
from controller.policy import Group, Person, Policy, card_digest
from readers.verify.base import SiteKey
from usb_guard.policy import UsbPolicy

MAX_SCOPE_ITEMS = 256  # doors, printers or hosts one node declares


def card_key_for(signing_key: Ed25519PrivateKey, site: str, node: str) -> bytes:
    """The node's card key: 32 bytes from the dashboard's policy key (HKDF), one per node."""
    return derive_secret(signing_key, f"card-hash {site}/{node}")


@dataclass(frozen=True)
class NodeScope:
    """What a node decides on (from its config): door ids, printer ids, host names, USB."""

    doors: frozenset[str] = frozenset()
    printers: frozenset[str] = frozenset()
    hosts: frozenset[str] = frozenset()
    usb: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"doors": sorted(self.doors), "printers": sorted(self.printers),
                "hosts": sorted(self.hosts), "usb": self.usb}

    @property
    def empty(self) -> bool:
        return not (self.doors or self.printers or self.hosts or self.usb)

    @classmethod
    def declared(cls, raw: Any) -> NodeScope | None:
        """The scope a node's state message declares (``policy.scope``), or None if absent or
        not well formed (such a node gets no slice)."""
        if not isinstance(raw, Mapping):
            return None

        def names(key: str) -> frozenset[str] | None:
            value = raw.get(key, [])
            if not isinstance(value, list) or len(value) > MAX_SCOPE_ITEMS:
                return None
            if not all(isinstance(v, str) and 0 < len(v) <= 128 for v in value):
                return None
            return frozenset(value)

        doors, printers, hosts = names("doors"), names("printers"), names("hosts")
        usb = raw.get("usb", False)
        if doors is None or printers is None or hosts is None or not isinstance(usb, bool):
            return None
        return cls(doors, printers, hosts, usb)


def slice_policy(
    policy: Policy, node: str, scope: NodeScope, card_key: bytes, *,
    expires_at: datetime | None = None, site_keys: Sequence[SiteKey] = (),
) -> Policy:
    """``policy`` cut down to ``scope`` for ``node``, its cards hashed under ``card_key``; a
    node with doors also gets ``site_keys`` (newest first) sealed to it (controller.card_keys)."""
    if policy.card_hash != "clear":
        raise ValueError("slice the site's policy, not a slice")
    groups: list[Group] = []
    for g in policy.groups:
        doors = _keep(g.doors, scope.doors)
        printers = _keep(g.printers, scope.printers)
        hosts = _keep(g.hosts, scope.hosts)
        if doors or printers or hosts:
            groups.append(Group(id=g.id, name=g.id, doors=doors, printers=printers,
                                windows=g.windows, on_holidays=g.on_holidays, hosts=hosts,
                                host_admin=g.host_admin and bool(hosts)))
    kept = {g.id for g in groups}
    people: list[Person] = []
    for p in policy.people:
        mine = [gid for gid in p.groups if gid in kept]
        if not mine:
            continue
        people.append(Person(
            id=p.id, name=p.id, active=p.active, valid_from=p.valid_from,
            valid_until=p.valid_until, cards=[card_digest(card_key, c) for c in p.cards],
            verified_cards=[card_digest(card_key, c) for c in p.verified_cards],
            groups=mine,
            cups_users=p.cups_users if scope.printers else [],
            host_accounts=p.host_accounts if scope.hosts else [],
        ))
    return Policy(
        version=policy.version, issued_at=policy.issued_at, site=policy.site,
        timezone=policy.timezone, people=people, groups=groups,
        doors=[d for d in policy.doors if d.id in scope.doors],
        printers=_keep(policy.printers, scope.printers),
        lockdown=policy.lockdown if scope.doors else False,
        lockdown_doors=_keep(policy.lockdown_doors, scope.doors),
        usb=_usb_for(policy.usb, scope),
        node=node, expires_at=expires_at or policy.expires_at, card_hash="hmac-sha256",
        nodes=[g for g in policy.nodes if g.name == node],  # its own approval: roles, key
        card_keys=[seal(card_key, policy.site, node, k) for k in site_keys] if scope.doors else [],
        card_key_ids=[k.key_id for k in site_keys] if scope.doors else [],
    )


def _usb_for(usb: UsbPolicy, scope: NodeScope) -> UsbPolicy:
    """The USB rules for a node with USB: media usable on its hosts only (all media if it
    names no host); none for a node without USB."""
    if not scope.usb:
        return UsbPolicy()
    if not scope.hosts:
        return usb
    media = tuple(m for m in usb.media if any(m.allowed_on(h) for h in scope.hosts))
    return usb.model_copy(update={"media": media})


def _keep(items: Iterable[str], allowed: frozenset[str]) -> list[str]:
    return [i for i in items if i in allowed]
