"""Typed payloads of the card personalisation events (a door gateway's enrolment of a blank
card at one of its readers, and the re-keying of a card during a site key changeover).

Neither carries a key: ``key_id`` names the site key (controller.card_keys) the card now holds.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_CFG = ConfigDict(extra="forbid", frozen=True)
KIND_ENROLMENT = "card.enrolment"
KIND_REKEYED = "card.rekeyed"
CardType = Literal["desfire", "felica_lite_s", "uid"]
# waiting: the reader waits for the card (present it now); personalised: the card holds the
# site key and proved it; failed: a card was presented and could not be personalised (detail
# says at which step); timeout: no card came in time; refused: the command named a reader this
# node does not have, or one already waiting
Outcome = Literal["waiting", "personalised", "failed", "timeout", "refused"]


class CardEnrolment(BaseModel):
    """card.enrolment: the outcome of one signed enrol command from the dashboard."""

    model_config = _CFG

    request: str = Field(min_length=1, max_length=64)
    reader: str
    outcome: Outcome
    card: str | None = None  # UID or IDm (uppercase hex) of the card presented
    card_type: CardType | None = None
    key_id: str | None = None  # the site key the card was personalised with
    detail: str = Field(default="", max_length=160)


class CardRekeyed(BaseModel):
    """card.rekeyed: a card that proved ``previous_key`` now holds ``key_id`` (changeover)."""

    model_config = _CFG

    reader: str
    card: str
    card_type: CardType
    key_id: str
    previous_key: str
