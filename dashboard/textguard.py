"""Typed text through the one guard (``controller.numguard``): every individual number is
replaced before anything is stored, and the request that carried it is remembered.

One mechanism for the dashboard's inputs, at the pydantic level:

- ``GuardedModel``: a base whose validator passes every ``str`` field (and the strings of list,
  tuple and dict fields) through the guard. The services' ``Input`` models (people, groups,
  doors, printers, site, the media ledger) and the deletion certificates derive
  from it, so a field added later is guarded without anyone remembering to; pages and API
  bodies reach them through the services. A field that must keep its exact value because
  hardware or a digest defines it (a USB serial, a token digest) opts out with
  ``Annotated[str, UNGUARDED]``.
- ``guard_text``: the same for a service function that takes text as an argument (an anomaly's
  reason, a card's label, a user's name and display name, a token's name, a report's
  organisation).

On a hit the text is kept with ``REDACTED`` in place of the number; the field's name (never the
value) is added to the hits of the current request (``collecting``), from which the web layer
raises the "number found" anomaly and tells the user (``dashboard.web.guard``). Outside a
request (a CLI command) the hit is logged, without the number.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationInfo, field_validator

from controller.numguard import REDACTED, redact

log = logging.getLogger(__name__)

__all__ = ["REDACTED", "UNGUARDED", "GuardedModel", "Hit", "collecting", "current_hits",
           "guard_text", "guard_value", "note_hit"]


@dataclass(frozen=True, slots=True)
class Hit:
    field: str
    count: int


class _Unguarded:
    def __repr__(self) -> str:
        return "UNGUARDED"


#: Annotated marker: this field keeps its exact value (hardware identifiers, digests).
UNGUARDED = _Unguarded()

_HITS: ContextVar[list[Hit] | None] = ContextVar("secroom_numguard_hits", default=None)


@contextmanager
def collecting() -> Iterator[list[Hit]]:
    """Collect the hits of everything validated inside (a request, a command)."""
    hits: list[Hit] = []
    token = _HITS.set(hits)
    try:
        yield hits
    finally:
        _HITS.reset(token)


def current_hits() -> list[Hit]:
    return list(_HITS.get() or ())


def note_hit(field: str, count: int, *, refused: bool = False) -> None:
    """Remember that ``field`` carried ``count`` individual numbers (the request's hits, or
    the log outside a request); the value itself is never kept."""
    hits = _HITS.get()
    if hits is not None:
        hits.append(Hit(field, count))
    elif refused:
        log.warning("%s held an individual number and was refused", field)
    else:
        log.warning("an individual number was removed from %s before it was stored", field)


def guard_text(text: str, field: str = "text") -> str:
    """``text`` with every individual number replaced; the hit is remembered under ``field``."""
    r = redact(text)
    if not r.count:
        return text
    note_hit(field, r.count)
    return r.text


def guard_value(value: Any, field: str) -> Any:
    """``guard_text`` over a string, or the strings of a list, tuple or dict (keys too)."""
    if isinstance(value, str):
        return guard_text(value, field)
    if isinstance(value, list):
        return [guard_value(v, field) for v in value]
    if isinstance(value, tuple):
        return tuple(guard_value(v, field) for v in value)
    if isinstance(value, dict):
        return {guard_value(k, field): guard_value(v, field) for k, v in value.items()}
    return value


class GuardedModel(BaseModel):
    """Every text field of a subclass goes through the guard (``UNGUARDED`` opts one out)."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_individual_number(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.field_name or "text"
        field = cls.model_fields.get(name)
        if field is not None and any(m is UNGUARDED for m in field.metadata):
            return value
        return guard_value(value, name)
