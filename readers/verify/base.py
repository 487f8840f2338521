"""Shared types of the verifier step: what a verification says, and how it talks to a card."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

# Send one command APDU, get the response APDU (data + SW1 SW2). Raises VerifyIOError when the
# card could not be reached (it left, the reader failed).
Transmit = Callable[[bytes], bytes]


class VerifyIOError(Exception):
    """The card did not answer (removed, reader error): not evidence of a clone."""


class Strength(StrEnum):
    """How far a presented card was proven."""

    VERIFIED = "verified"  # answered the challenge under a current site key
    WEAK = "weak"  # UID/IDm only: no secroom key on the card, or a card type we cannot check
    FAILED = "failed"  # a checkable card that did not prove the key (wrong key, clone, replay)


class CardType(StrEnum):
    DESFIRE = "desfire"
    FELICA_LITE_S = "felica_lite_s"
    UID_ONLY = "uid"


@dataclass(frozen=True)
class Credential:
    """The verifier's verdict on one presentation. ``detail`` is safe to log (status words,
    step names); ``key_id`` names the site key that verified (never the key). A presentation
    that served an enrolment (``enrolment`` set) opens nothing: its verdict is the
    personalisation's."""

    strength: Strength
    card_type: CardType
    detail: str = ""
    key_id: str | None = None
    rekeyed_from: str | None = None  # the site key the card held before this tap re-keyed it
    enrolment: str | None = None  # the enrolment request this presentation was personalised for


UID_ONLY: Final[Credential] = Credential(Strength.WEAK, CardType.UID_ONLY, "not verified")


@dataclass(frozen=True)
class SiteKey:
    """One site master key (32 random bytes) and its id. The repr never shows the secret."""

    key_id: str
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise ValueError("a site card master key has 32 bytes")

    def __repr__(self) -> str:
        return f"SiteKey(key_id={self.key_id!r}, secret=<hidden>)"
