"""The number guard as the documents use it: every cell and line a report or certificate prints
goes through ``scrub``; free text an admin types is refused by ``has_number``.

The one import below is the switch to the project's single guard (controller.numguard) when it
lands: nothing else in dashboard.reports names the guard.
"""

from __future__ import annotations

from dashboard.numlog.redact import contains_my_number as _contains
from dashboard.numlog.redact import redact as _redact


def scrub(text: str) -> str:
    """``text`` with every individual number replaced by the guard's marker."""
    return _redact(text).text if text else text


def has_number(text: str) -> bool:
    return bool(text) and _contains(text)
