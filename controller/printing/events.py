"""Typed payloads of the printing events (the ``data`` of print.release / denied / expired)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

PRINT_RELEASE = "print.release"
PRINT_DENIED = "print.denied"
PRINT_EXPIRED = "print.expired"

DenialReason = Literal[
    "unknown_card",
    "no_right",
    "not_in_room",
    "no_jobs",
    "printer_stopped",
    "cups_unavailable",
    "printing_not_configured",  # a tap at a printer reader of a gateway without [printing]
]
DENIAL_REASONS: frozenset[str] = frozenset(DenialReason.__args__)  # type: ignore[attr-defined]


class ReleasedJob(BaseModel, extra="forbid"):
    job_id: int
    cups_user: str
    copies: int = Field(ge=1)
    pages: int | None = None  # job-impressions when CUPS reports it
    sheets: int | None = None  # job-media-sheets when CUPS reports it
    title: str | None = None  # only when titles are not redacted
    # set when titles are redacted: HMAC-SHA256 under the node's title key, first 16 hex digits
    title_hmac: str | None = None


class PrintReleasePayload(BaseModel, extra="forbid"):
    """An output record: these jobs went to the printer because ``person`` tapped at it."""

    printer: str
    person_id: str
    job_ids: list[int]
    jobs: list[ReleasedJob]
    copies: int = Field(ge=0)
    pages: int | None = None  # sum over jobs; None when CUPS reported no count for some job


class PrintDeniedPayload(BaseModel, extra="forbid"):
    """A tap that released nothing (or not everything); held jobs stay held."""

    reason: DenialReason
    printer: str
    person_id: str | None
    # Jobs that were due for release but are not confirmed released: they stay held.
    job_ids: list[int] = Field(default_factory=list)
    detail: str | None = None


class ExpiredJob(BaseModel, extra="forbid"):
    job_id: int
    cups_user: str
    person_id: str | None
    held_hours: float


class PrintExpiredPayload(BaseModel, extra="forbid"):
    """Jobs cancelled because nobody released them within the hold time."""

    printer: str
    job_ids: list[int]
    jobs: list[ExpiredJob]
    hold_hours: float
