"""The number guard as the documents use it: every cell and line a report or certificate prints
goes through ``scrub``; free text an admin types is refused by ``has_number``. Both are the
project's one guard (controller.numguard)."""

from __future__ import annotations

from controller.numguard import contains_my_number
from controller.numguard import scrub as _scrub


def scrub(text: str) -> str:
    """``text`` with every individual number replaced by the guard's marker."""
    return _scrub(text) if text else text


def has_number(text: str) -> bool:
    return bool(text) and contains_my_number(text)
