"""Rule bundles shared by the incremental path and the full re-run (same inputs, same keys)."""

from __future__ import annotations

from collections.abc import Sequence

from dashboard.correlation import rules as R
from dashboard.correlation.settings import CorrelationSettings
from dashboard.correlation.types import AccessIn, FindingOut, Interval, Outcome, PrintIn, UsbIn

ROW_RULES = (R.NOT_IN_ROOM, R.OUTSIDE_HOURS, R.USB_NEAR_ACCESS, R.FAILED_LOGINS, R.NUMBER_IN_LOG)


def access_findings(a: AccessIn, intervals: Sequence[Interval], usb: Sequence[UsbIn],
                    logins: Sequence[AccessIn], s: CorrelationSettings) -> list[FindingOut]:
    """Every row rule for one imported row. ``intervals``: the person's presence around the row
    (and the last one before it); ``usb``: USB events near the row (any host); ``logins``: the
    operator's log-in rows in the failed-log-in window before it."""
    found = [
        R.access_not_in_room(a, intervals, s),
        R.access_outside_hours(a, s),
        R.usb_near_access(a, usb, s) if usb else None,
        R.failed_logins(a, logins, s) if logins else None,
        R.number_in_log(a, s) if a.redacted_fields else None,
        R.unknown_operator(a, s) if a.person_id is None else None,
    ]
    return [f for f in found if f is not None]


def access_outcome(a: AccessIn, intervals: Sequence[Interval], usb: Sequence[UsbIn],
                   logins: Sequence[AccessIn], s: CorrelationSettings) -> Outcome:
    """``access_findings`` plus the row-keyed rules that are clear (the unknown-operator finding
    is keyed per operator: another row of it never clears it)."""
    out = Outcome(found=access_findings(a, intervals, usb, logins, s))
    have = {f.key for f in out.found}
    out.cleared = {k for k in (R.key(r, a.key) for r in ROW_RULES) if k not in have}
    return out


def print_outcome(p: PrintIn, accesses: Sequence[AccessIn], s: CorrelationSettings) -> Outcome:
    out = Outcome()
    f = R.print_release(p, accesses, s)
    out.found.append(f)
    out.cleared |= set(R.print_keys(p)) - {f.key}
    return out
