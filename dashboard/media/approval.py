"""Second-person approval of a check-out: the approver re-authenticates with their password.

A typed name would let the requester approve their own request; here the approver must be a
different, active dashboard user with a managing role who proves it with their password. The
check goes through ``AuthService.login`` so failures count towards the log-in throttle (no
password guessing through this form); the session it opens is closed at once.
"""

from __future__ import annotations

from datetime import datetime

from dashboard.auth.roles import EDITORS
from dashboard.auth.service import AuthService
from dashboard.media.service import MediaError


class ApprovalError(MediaError):
    """The named approver did not approve (unknown, wrong password, same person, no right)."""


def verify_approver(auth: AuthService, *, requester: str, approver: str, password: str,
                    ip: str, now: datetime) -> str:
    """The approver's username, once verified; raises ApprovalError otherwise."""
    approver = approver.strip()
    if not approver:
        raise ApprovalError("an approver is required (a second person)")
    if approver == requester:
        raise ApprovalError("the approver must be a second person, not the requester")
    if not password:
        raise ApprovalError("the approver must confirm with their password")
    result = auth.login(approver, password, ip, now)
    if result.outcome == "throttled":
        raise ApprovalError("too many failed attempts for this approver; wait and try again")
    if result.outcome != "ok" or result.principal is None:
        raise ApprovalError("the approver's name or password is wrong")
    if result.principal.session_id is not None:
        auth.logout(result.principal.session_id)
    if result.principal.role not in EDITORS:
        raise ApprovalError(f"{approver} may not approve check-outs (needs admin or "
                            "security admin)")
    return result.principal.username
