"""The USB part of the signed node policy: registered media, class rules, default verdict.

The dashboard builds it from the media ledger (see ``ledger.to_policy``) and publishes it inside
the signed node policy; the agent receives it through a ``policy_provider`` callable. The policy
never carries a medium token: only ``token_digest`` (``token.token_digest``), a keyed digest the
agent can compare with the token it reads from the medium, but which does not let anyone who
reads the policy forge a token.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MediaState = Literal[
    "registered", "in_storage", "checked_out", "returned", "wiped", "lost", "disposed"
]
RuleAction = Literal["allow", "block"]

HEX4 = r"^[0-9a-f]{4}$"
INTERFACE_PATTERN = re.compile(r"^[0-9a-f]{2}:(?:[0-9a-f]{2}:(?:[0-9a-f]{2}|\*)|\*:\*)$")
ANY_HOST = "*"


class MediumIdentity(BaseModel):
    """What identifies a registered medium on the bus (the token tells clones apart)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vendor_id: str = Field(pattern=HEX4, description="idVendor, 4 lowercase hex digits")
    product_id: str = Field(pattern=HEX4, description="idProduct, 4 lowercase hex digits")
    serial: str | None = Field(default=None, max_length=255, description="iSerial, None if absent")
    descriptors_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the sysfs descriptors"
    )
    interfaces: tuple[str, ...] = Field(
        default=(), description="interface types cc:ss:pp seen at registration"
    )

    @field_validator("vendor_id", "product_id", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("interfaces")
    @classmethod
    def _interfaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not re.fullmatch(r"[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}", item):
                raise ValueError(f"interface {item!r} is not cc:ss:pp in lowercase hex")
        return value


class RegisteredMedium(BaseModel):
    """One medium of the ledger as the agents see it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    control_number: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    identity: MediumIdentity
    token_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    state: MediaState
    hosts: tuple[str, ...] = Field(default=(), description='hosts where use is allowed; "*" = any')
    read_only: bool = False
    usable_until: datetime | None = Field(
        default=None, description="after this instant the medium is blocked (e.g. due back)"
    )

    def allowed_on(self, host: str) -> bool:
        return ANY_HOST in self.hosts or host in self.hosts


class ClassRule(BaseModel):
    """Allow or block an interface type; ``pattern`` is cc:ss:pp, cc:ss:* or cc:*:*."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str
    action: RuleAction
    label: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")

    @field_validator("pattern", mode="before")
    @classmethod
    def _pattern(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.lower()
            if not INTERFACE_PATTERN.fullmatch(value):
                raise ValueError(f"pattern {value!r} must be cc:ss:pp, cc:ss:* or cc:*:*")
        return value

    def matches(self, interface: str) -> bool:
        want = self.pattern.split(":")
        have = interface.split(":")
        return all(w in ("*", h) for w, h in zip(want, have, strict=True))


# Hubs and keyboards/mice are allowed so that nobody is locked out of a host, even before the
# first policy arrives. 03:00:00 covers the extra interface of composite keyboards (media keys).
DEFAULT_CLASS_RULES: tuple[ClassRule, ...] = (
    ClassRule(pattern="09:*:*", action="allow", label="hub"),
    ClassRule(pattern="03:01:01", action="allow", label="hid-keyboard"),
    ClassRule(pattern="03:01:02", action="allow", label="hid-mouse"),
    ClassRule(pattern="03:00:00", action="allow", label="hid-generic"),
)
MASS_STORAGE_CLASS = 0x08
DEFAULT_USABLE_STATES: tuple[MediaState, ...] = ("in_storage", "checked_out")


class UsbPolicy(BaseModel):
    """What the dashboard publishes to the USB agents inside the signed node policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    media: tuple[RegisteredMedium, ...] = ()
    class_rules: tuple[ClassRule, ...] = DEFAULT_CLASS_RULES
    default: RuleAction = Field(
        default="block", description="verdict for non-storage interfaces no class rule matches"
    )
    usable_states: tuple[MediaState, ...] = DEFAULT_USABLE_STATES

    @field_validator("media")
    @classmethod
    def _unique(cls, value: tuple[RegisteredMedium, ...]) -> tuple[RegisteredMedium, ...]:
        seen: set[str] = set()
        for medium in value:
            if medium.control_number in seen:
                raise ValueError(f"control number {medium.control_number} appears twice")
            seen.add(medium.control_number)
        return value
