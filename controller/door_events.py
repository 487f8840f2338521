"""Typed payloads (the envelope's ``data``) for the door.* and policy.* kinds.

Emitters build one of these and pass ``model.model_dump(mode="json")`` to ``emit(kind, data)``;
the dashboard validates incoming ``data`` with ``PAYLOADS[kind]``. No payload carries an
individual number; card UIDs are hardware serials, not personal numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_CFG = ConfigDict(extra="forbid", frozen=True)

DenialReason = Literal[
    "unknown_card",
    "inactive",
    "expired",
    "not_yet_valid",
    "not_permitted",
    "outside_schedule",
    "anti_passback",
    "awaiting_second_person",
    "same_person_twice",
    "lockdown",
    "no_policy",
]


class DoorAccess(BaseModel):
    """door.access: one card presented at a door reader, granted or denied with a reason."""

    model_config = _CFG

    door: str
    reader: str
    direction: Literal["in", "out"]
    granted: bool
    reason: DenialReason | None = None
    person_id: str | None = None
    second_person_id: str | None = None  # the partner in a two-person grant
    card: str | None = None  # the UID presented (uppercase hex)
    policy_version: int | None = None


class DoorTwoPersonPending(BaseModel):
    """door.two_person_pending: first authorised card of a pair; waits for a second person."""

    model_config = _CFG

    door: str
    reader: str
    person_id: str
    window_s: int


class DoorOpened(BaseModel):
    """door.opened: the contact opened while the door was unlocked (by a grant or REX)."""

    model_config = _CFG

    door: str
    via: Literal["grant", "rex"]
    person_id: str | None = None
    reason: str | None = None  # why the grant was given, e.g. "access", "two_person", "remote"


class DoorClosed(BaseModel):
    model_config = _CFG

    door: str
    open_s: float = Field(ge=0)
    via: Literal["grant", "rex", "forced", "unknown"]  # how the opening that just ended began


class DoorForced(BaseModel):
    """door.forced: the contact opened while the door was locked and no REX or grant."""

    model_config = _CFG

    door: str
    lockdown: bool = False


class DoorHeldOpen(BaseModel):
    """door.held_open: open longer than held_open_s (emitted once per opening)."""

    model_config = _CFG

    door: str
    open_s: float = Field(ge=0)
    via: Literal["grant", "rex", "forced", "unknown"]
    person_id: str | None = None


class DoorRex(BaseModel):
    """door.rex: the request-to-exit button was pressed (egress works even in lockdown)."""

    model_config = _CFG

    door: str
    lockdown: bool = False


class DoorLockdown(BaseModel):
    model_config = _CFG

    door: str
    on: bool


class PolicyApplied(BaseModel):
    model_config = _CFG

    version: int
    issued_at: datetime
    key_id: str
    digest: str
    source: str  # "mqtt", "file", "stored" (re-loaded from disk at start-up)
    persisted: bool  # False: applied in memory but the disk refused the write


class PolicyRejected(BaseModel):
    model_config = _CFG

    reason: Literal[
        "unsigned",
        "bad_signature",
        "unknown_key",
        "older_version",
        "version_conflict",
        "malformed",
        "wrong_site",
    ]
    version: int | None = None
    detail: str = Field(default="", max_length=200)
    source: str


PAYLOADS: dict[str, type[BaseModel]] = {
    "door.access": DoorAccess,
    "door.two_person_pending": DoorTwoPersonPending,
    "door.opened": DoorOpened,
    "door.closed": DoorClosed,
    "door.forced": DoorForced,
    "door.held_open": DoorHeldOpen,
    "door.rex": DoorRex,
    "door.lockdown": DoorLockdown,
    "policy.applied": PolicyApplied,
    "policy.rejected": PolicyRejected,
}
