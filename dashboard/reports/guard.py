"""The number guard as the documents use it: every cell and line a report or certificate prints
goes through ``scrub``; free text an admin types is refused by ``has_number``.

The one import line below is the switch to the project's single guard (controller.numguard) when it
lands: nothing else in dashboard.reports names the guard.
"""

from __future__ import annotations

from dashboard.numlog import redact as _guard  # the switch: controller.numguard when it lands


def scrub(text: str) -> str:
    """``text`` with every individual number replaced by the guard's marker."""
    return _guard.redact(text).text if text else text


def has_number(text: str) -> bool:
    return bool(text) and _guard.contains_my_number(text)
