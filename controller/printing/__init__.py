"""Printer release: jobs wait on a stopped hold queue until their owner taps an authorised card.

Public API: PrintSettings, PrintRelease (service), ReleaseOutcome, CupsLike, FakeCups,
PrintError / CupsUnavailable / JobGone, and the event payload models in ``events``.
The pycups adapter lives in ``cups_adapter`` and is imported only by whoever builds the real one.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Loaded on first use (PEP 562): every node imports ``controller.printing.events`` through the
# event registry (controller.events), and a node that releases no print jobs (a room PC's host
# agent, a door) should not carry the service, the CUPS types and their imports in memory.
_WHERE = {
    "PRINT_DENIED": "events", "PRINT_EXPIRED": "events", "PRINT_RELEASE": "events",
    "PrintDeniedPayload": "events", "PrintExpiredPayload": "events",
    "PrintReleasePayload": "events", "FakeCups": "fake", "PrintRelease": "service",
    "ReleaseOutcome": "service", "PrintSettings": "settings", "CupsLike": "types",
    "CupsUnavailable": "types", "HeldJob": "types", "JobGone": "types", "JobState": "types",
    "PrintError": "types", "QueueStatus": "types",
}

if TYPE_CHECKING:
    from controller.printing.events import (
        PRINT_DENIED,
        PRINT_EXPIRED,
        PRINT_RELEASE,
        PrintDeniedPayload,
        PrintExpiredPayload,
        PrintReleasePayload,
    )
    from controller.printing.fake import FakeCups
    from controller.printing.service import PrintRelease, ReleaseOutcome
    from controller.printing.settings import PrintSettings
    from controller.printing.types import (
        CupsLike,
        CupsUnavailable,
        HeldJob,
        JobGone,
        JobState,
        PrintError,
        QueueStatus,
    )


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value


__all__ = [
    "PRINT_DENIED",
    "PRINT_EXPIRED",
    "PRINT_RELEASE",
    "CupsLike",
    "CupsUnavailable",
    "FakeCups",
    "HeldJob",
    "JobGone",
    "JobState",
    "PrintDeniedPayload",
    "PrintError",
    "PrintExpiredPayload",
    "PrintRelease",
    "PrintReleasePayload",
    "PrintSettings",
    "QueueStatus",
    "ReleaseOutcome",
]
