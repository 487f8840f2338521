"""Printer release: jobs wait on a stopped hold queue until their owner taps an authorised card.

Public API: PrintSettings, PrintRelease (service), ReleaseOutcome, CupsLike, FakeCups,
PrintError / CupsUnavailable / JobGone, and the event payload models in ``events``.
The pycups adapter lives in ``cups_adapter`` and is imported only by whoever builds the real one.
"""

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
