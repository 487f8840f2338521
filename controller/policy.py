"""The access policy: its model and its signed wire format (the node's store of the last good
one is controller.policy_store).

Wire format (what ``secroom policy sign`` writes, and what the dashboard publishes retained to
each node on ``secroom/v1/{site}/{node}/policy``) is canonical JSON::

    {"key_id": "<16 chars>", "policy": {...}, "sig": "<base64url Ed25519>"}

``sig`` is the admin key's Ed25519 signature over ``SIGNING_CONTEXT + canonical_json(policy)``,
where ``policy`` is the JSON object exactly as received (the verifier never re-serialises a model
to check a signature). The context prefix keeps a policy signature from being valid as anything
else. ``key_id`` is ``controller.keys.key_id`` of the signer's public key.

Versions: a node refuses any policy older than the highest it ever applied (``older_version``,
the floor kept by controller.policy_store); the same version with identical content is a silent
no-op (the retained message is re-delivered on every reconnect); the same version with different
content is refused (``version_conflict``); one past its ``expires_at`` is refused (``expired``).

Slices: the dashboard signs one policy per node (``node`` names it, controller.policy_slice cuts
it) holding only what that node decides on. Its card identifiers are ``card_hash =
"hmac-sha256"``: HMAC-SHA256 of the normalised UID under the node's card key (``card_digest``),
which only the node and the dashboard hold; the node hashes a tapped UID the same way before the
lookup (``bind_card_key``). A node refuses a slice signed for another node (``wrong_node``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from controller.card_keys import CardKeyError, SealedCardKey, unseal_all
from controller.envelope import b64u, canonical_json, unb64u
from controller.events import NodeRole, PolicyReason
from controller.keys import key_id as _key_id
from readers.verify.base import SiteKey
from usb_guard.policy import UsbPolicy

SIGNING_CONTEXT = b"secroom/v1/policy\n"
MAX_POLICY_BYTES = 4 * 1024 * 1024
_UID_RE = re.compile(r"^[0-9A-F]{4,64}$")
_UID_SEPARATORS = re.compile(r"[\s:\-]")



class PolicyError(Exception):
    """A policy blob was refused; ``reason`` is a short machine word (see ``PolicyReason``)."""

    def __init__(self, reason: PolicyReason, detail: str, *, version: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: PolicyReason = reason
        self.detail = detail
        self.version = version


def normalise_uid(uid: str) -> str:
    """A card UID as uppercase hex without separators; raises ValueError if it is not hex."""
    text = _UID_SEPARATORS.sub("", uid).upper()
    if not _UID_RE.fullmatch(text):
        raise ValueError("card UID must be 4-64 hexadecimal digits")
    return text


Ident = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s/#+]+$")]
# a local account name on a room host (useradd's NAME_REGEX, as Debian allows it)
Account = Annotated[str, Field(min_length=1, max_length=32,
                               pattern=r"^[a-z_][a-z0-9_.-]*\$?$")]
_FROZEN = ConfigDict(extra="forbid", frozen=True)


class Person(BaseModel):
    """Someone who may hold cards. ``valid_until`` is inclusive (local site date)."""

    model_config = _FROZEN

    id: Ident
    name: str = Field(min_length=1, max_length=200)
    active: bool = True
    valid_from: date | None = None
    valid_until: date | None = None
    cards: list[Annotated[str, AfterValidator(normalise_uid)]] = []
    # cards enrolled with a secroom key (DESFire / FeliCa Lite-S): they must prove it at every
    # reader; a subset of ``cards``
    verified_cards: list[Annotated[str, AfterValidator(normalise_uid)]] = []
    groups: list[Ident] = []
    operator_ids: list[str] = []
    cups_users: list[str] = []
    host_accounts: list[Account] = []  # local accounts this person logs on as at room hosts

    @model_validator(mode="after")
    def _check(self) -> Person:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError(f"person {self.id}: valid_until is before valid_from")
        if len(set(self.cards)) != len(self.cards):
            raise ValueError(f"person {self.id}: a card is listed twice")
        if not set(self.verified_cards) <= set(self.cards):
            raise ValueError(f"person {self.id}: a verified card is not among the cards")
        return self


class TimeWindow(BaseModel):
    """Weekly window in local site time: ``start`` inclusive, ``end`` exclusive.

    ``end`` must be after ``start``; ``end`` of 00:00 means midnight at the end of the day.
    A window across midnight is written as two windows.
    """

    model_config = _FROZEN

    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(min_length=1)  # 0=Mon .. 6=Sun
    start: time
    end: time

    @model_validator(mode="after")
    def _check(self) -> TimeWindow:
        if self.start.tzinfo or self.end.tzinfo:
            raise ValueError("window times are local site times without a zone")
        if self.end != time(0) and self.end <= self.start:
            raise ValueError("window end must be after its start (00:00 means end of day)")
        if len(set(self.days)) != len(self.days):
            raise ValueError("window lists a day twice")
        return self


class Group(BaseModel):
    """Rights: which doors, printers and room hosts, and when.

    No windows means any time, holidays included. With windows, entry on a Japanese public
    holiday also needs ``on_holidays`` (then that weekday's windows apply). ``hosts`` are the
    room PCs (host agents' ``[host].host``) its members may log on to with their card, in the
    same windows; ``host_admin`` gives them the administrator's right there (sudo).
    """

    model_config = _FROZEN

    id: Ident
    name: str = Field(min_length=1, max_length=200)
    doors: list[Ident] = []
    printers: list[Ident] = []
    windows: list[TimeWindow] = []
    on_holidays: bool = False
    hosts: list[Ident] = []
    host_admin: bool = False


class DoorRule(BaseModel):
    model_config = _FROZEN

    id: Ident
    name: str = Field(min_length=1, max_length=200)
    two_person: bool = False
    two_person_window_s: int = Field(default=10, ge=1, le=600)
    anti_passback: bool = False
    # only cards that prove their key open this door (server room, rack); UID-only cards
    # are refused with ``credential_weak``
    require_verified: bool = False


class NodeGrant(BaseModel):
    """An approved node as the dashboard signed it: its roles (what it may report, checked by
    the ingest) and the key that signs its events from ``key_since_seq`` on."""

    model_config = _FROZEN

    name: Ident
    roles: list[NodeRole] = Field(min_length=1)
    public_key: str = Field(min_length=43, max_length=43)
    key_since_seq: int = Field(default=1, ge=1)


class Policy(BaseModel):
    """Everything a node needs to decide access, with lookups built once at validation.

    Frozen. Build a changed policy with ``Policy.model_validate({...})``: ``model_copy(update=)``
    skips validation and would keep stale lookups.
    """

    model_config = _FROZEN

    version: int = Field(ge=1)
    issued_at: datetime
    site: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    timezone: str = "Asia/Tokyo"
    people: list[Person]
    groups: list[Group]
    doors: list[DoorRule]
    printers: list[Ident] = []
    lockdown: bool = False
    lockdown_doors: list[Ident] = []
    usb: UsbPolicy = Field(default_factory=UsbPolicy)
    nodes: list[NodeGrant] = []  # the approved nodes, their roles and keys
    node: Ident | None = None  # the node this slice is for; None: the whole site's policy
    expires_at: datetime | None = None  # a node refuses the policy after this
    card_hash: Literal["clear", "hmac-sha256"] = "clear"
    # site card master keys sealed to this slice's node, newest first (controller.card_keys)
    card_keys: list[SealedCardKey] = Field(default=[], max_length=4)
    # ids of the site card master keys in effect, newest first (the site policy names them so
    # that a rotation is a new version; a slice carries the keys themselves, sealed)
    card_key_ids: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]] = Field(
        default=[], max_length=4)

    _tz: ZoneInfo = PrivateAttr()
    _card_key: bytes | None = PrivateAttr(default=None)
    _site_keys: list[SiteKey] = PrivateAttr(default_factory=list)
    _verified: set[str] = PrivateAttr(default_factory=set)
    _by_card: dict[str, Person] = PrivateAttr()
    _by_account: dict[str, Person] = PrivateAttr()
    _people: dict[str, Person] = PrivateAttr()
    _groups: dict[str, Group] = PrivateAttr()
    _doors: dict[str, DoorRule] = PrivateAttr()

    @field_validator("issued_at", "expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("issued_at and expires_at must carry a time zone")
        return value

    @model_validator(mode="after")
    def _index(self) -> Policy:
        try:
            self._tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        self._people = _unique("person", self.people)
        self._groups = _unique("group", self.groups)
        self._doors = _unique("door", self.doors)
        printers = set(self.printers)
        if len(printers) != len(self.printers):
            raise ValueError("a printer is listed twice")
        self._by_card = {}
        self._by_account = {}
        for person in self.people:
            for account in person.host_accounts:
                holder = self._by_account.setdefault(account, person)
                if holder is not person:
                    raise ValueError(
                        f"host account {account} is held by both {holder.id} and {person.id}")
            for group_id in person.groups:
                if group_id not in self._groups:
                    raise ValueError(f"person {person.id} is in unknown group {group_id}")
            self._verified.update(person.verified_cards)
            for card in person.cards:
                other = self._by_card.setdefault(card, person)
                if other is not person:
                    raise ValueError(f"card {card} is held by both {other.id} and {person.id}")
        for group in self.groups:
            for door_id in group.doors:
                if door_id not in self._doors:
                    raise ValueError(f"group {group.id} names unknown door {door_id}")
            for printer in group.printers:
                if printer not in printers:
                    raise ValueError(f"group {group.id} names unknown printer {printer}")
        for door_id in self.lockdown_doors:
            if door_id not in self._doors:
                raise ValueError(f"lockdown names unknown door {door_id}")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    def person(self, person_id: str) -> Person | None:
        return self._people.get(person_id)

    def group(self, group_id: str) -> Group | None:
        return self._groups.get(group_id)

    def door(self, door_id: str) -> DoorRule | None:
        return self._doors.get(door_id)

    def person_for_card(self, uid: str) -> Person | None:
        """The holder of the tapped ``uid``; with hashed cards, looked up by its digest under the
        bound card key (none bound: no card is known)."""
        try:
            text = normalise_uid(uid)
        except ValueError:
            return None
        if self.card_hash != "clear":
            key = self._card_key
            if key is None:
                return None
            text = hmac.new(key, text.encode(), hashlib.sha256).hexdigest().upper()
        return self._by_card.get(text)

    def card_enrolled_verified(self, uid: str) -> bool:
        """True when ``uid`` was enrolled with a secroom key: it must prove it to be let in."""
        try:
            text = normalise_uid(uid)
        except ValueError:
            return False
        if self.card_hash != "clear":
            if self._card_key is None:
                return False
            text = hmac.new(self._card_key, text.encode(), hashlib.sha256).hexdigest().upper()
        return text in self._verified

    def bind_card_key(self, key: bytes) -> None:
        """Give a hashed policy the node's card key (controller.policy_store does, once) and
        open its sealed site card keys; PolicyError ``card_keys_unreadable`` if one does not
        open."""
        if self.card_keys:
            if self.node is None:
                raise PolicyError("card_keys_unreadable", "card keys outside a node's slice")
            try:
                self._site_keys = unseal_all(key, self.site, self.node, self.card_keys)
            except CardKeyError as exc:
                raise PolicyError("card_keys_unreadable", str(exc), version=self.version) from exc
        self._card_key = key

    @property
    def site_keys(self) -> list[SiteKey]:
        """The site card master keys this node verifies cards with (newest first)."""
        return list(self._site_keys)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def person_for_account(self, account: str) -> Person | None:
        """The person who logs on as the local ``account`` at room hosts, if any."""
        return self._by_account.get(account)

    def is_locked_down(self, door_id: str) -> bool:
        return self.lockdown or door_id in self.lockdown_doors


def _unique(what: str, items: Sequence[Any]) -> dict[str, Any]:
    index: dict[str, Any] = {}
    for item in items:
        if index.setdefault(item.id, item) is not item:
            raise ValueError(f"{what} id {item.id} is used twice")
    return index


def card_digest(key: bytes, uid: str) -> str:
    """What a hashed policy lists for card ``uid``: HMAC-SHA256 under the node's card key."""
    return hmac.new(key, normalise_uid(uid).encode(), hashlib.sha256).hexdigest().upper()


# --- signing and verification -------------------------------------------------------------


def sign_policy(policy: Policy, key: Ed25519PrivateKey) -> bytes:
    """The signed wire form of ``policy`` (canonical JSON bytes)."""
    body = policy.model_dump(mode="json")
    sig = b64u(key.sign(SIGNING_CONTEXT + canonical_json(body)))
    return canonical_json({"key_id": _key_id(key.public_key()), "policy": body, "sig": sig})


@dataclass(frozen=True)
class VerifiedPolicy:
    policy: Policy
    key_id: str
    digest: str  # sha256 of the canonical policy JSON: equal digests mean identical content


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a policy")


def open_policy(
    blob: bytes, trusted: Sequence[Ed25519PublicKey], *, site: str, node: str | None = None
) -> VerifiedPolicy:
    """Check shape, signer and signature, then validate; no version or expiry check. A slice
    for another node than ``node`` is refused (a whole-site policy is for any node). Raises
    PolicyError."""
    if len(blob) > MAX_POLICY_BYTES:
        raise PolicyError("malformed", f"policy of {len(blob)} bytes exceeds {MAX_POLICY_BYTES}")
    try:
        raw = json.loads(blob, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # absurd nesting too
        raise PolicyError("malformed", "policy is not JSON") from exc
    if not isinstance(raw, dict):
        raise PolicyError("malformed", "policy is not a JSON object")
    version = _peek_version(raw)
    if "policy" not in raw:
        if "version" in raw or "people" in raw:
            raise PolicyError("unsigned", "a bare policy without signature", version=version)
        raise PolicyError("malformed", "no policy object")
    if "sig" not in raw or "key_id" not in raw:
        raise PolicyError("unsigned", "policy carries no signature", version=version)
    body, sig, kid = raw["policy"], raw["sig"], raw["key_id"]
    if set(raw) != {"policy", "sig", "key_id"} or not isinstance(body, dict):
        raise PolicyError("malformed", "unexpected fields around the policy", version=version)
    if not isinstance(kid, str) or not isinstance(sig, str):
        raise PolicyError("malformed", "key_id and sig must be strings", version=version)
    key = next((k for k in trusted if _key_id(k) == kid), None)
    if key is None:
        raise PolicyError("unknown_key", f"signer {kid[:16]!r} is not trusted", version=version)
    signed = canonical_json(body)
    try:
        key.verify(unb64u(sig), SIGNING_CONTEXT + signed)
    except (InvalidSignature, ValueError) as exc:
        raise PolicyError("bad_signature", "signature does not match", version=version) from exc
    try:
        policy = Policy.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "policy"
        raise PolicyError("malformed", f"{where}: {first['msg']}", version=version) from exc
    if policy.site != site:
        raise PolicyError("wrong_site", f"policy is for site {policy.site!r}", version=version)
    if policy.node is not None and policy.node != node:
        raise PolicyError("wrong_node", f"policy is for node {policy.node!r}", version=version)
    return VerifiedPolicy(policy, kid, hashlib.sha256(signed).hexdigest())


def _peek_version(raw: dict[str, Any]) -> int | None:
    body = raw.get("policy", raw)
    version = body.get("version") if isinstance(body, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def verify_policy(
    blob: bytes, trusted: Sequence[Ed25519PublicKey], *, site: str, min_version: int = 0,
    node: str | None = None,
) -> Policy:
    """Verify a signed policy; refuse a version below ``min_version``. Raises PolicyError."""
    verified = open_policy(blob, trusted, site=site, node=node)
    if verified.policy.version < min_version:
        raise PolicyError(
            "older_version",
            f"version {verified.policy.version} is older than {min_version}",
            version=verified.policy.version,
        )
    return verified.policy
