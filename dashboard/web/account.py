"""The caller's own account: set a new password.

After an admin's reset this is the only page a session may open (the middleware keeps it
here) until the user has replaced the temporary password with their own. The current password
is checked through the log-in throttle, so a stolen session cannot be used to guess it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.audit import append_audit
from dashboard.auth.lifecycle import set_own_password
from dashboard.auth.passwords import PasswordPolicyError, check_policy
from dashboard.auth.roles import allowed
from dashboard.auth.service import AuthError, AuthService, Principal
from dashboard.auth.throttle import settle_success
from dashboard.models.auth import User
from dashboard.web import deps

router = APIRouter()


def _form(request: Request, error: str = "", status: int = 200) -> Response:
    return deps.render(request, "account_password.html", {"error": error}, status)


@router.get("/account/password", name="account.password", include_in_schema=False)
def password_form(request: Request) -> Response:
    return _form(request)


@router.post("/account/password", name="account.password_change", include_in_schema=False)
def password_change(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    current: Annotated[str, Form(max_length=1024)],
    new: Annotated[str, Form(max_length=1024)],
    confirm: Annotated[str, Form(max_length=1024)],
) -> Response:
    t = deps.translator(request)
    if new != confirm:
        return _form(request, t("account.mismatch"), 400)
    try:
        check_policy(new)
    except PasswordPolicyError:
        return _form(request, t("account.too_short"), 400)
    auth: AuthService = request.app.state.auth
    now = deps.now(request)
    ip = request.client.host if request.client else ""
    outcome, _, attempt = auth.check_password(who.username, current, ip, now)
    if outcome == "throttled":
        return _form(request, t("login.error.throttled"), 429)
    if outcome != "ok":
        return _form(request, t("account.current_wrong"), 400)
    user = db.get(User, who.user_id)
    assert user is not None  # the session resolved to this user a moment ago
    try:
        ended = set_own_password(db, user, new, keep=who.session_id)
    except AuthError:
        db.rollback()
        return _form(request, t("account.same"), 400)
    settle_success(db, attempt)
    append_audit(db, actor=who.username, action="user.password_change", target_type="user",
                 target_id=who.username, before=None,
                 after={"sessions_ended": len(ended)}, now=now)
    db.commit()
    auth.announce_ended(ended)
    target = "/" if allowed("overview.page", who.role) else "/nodes"
    return RedirectResponse(f"{target}?msg=account.changed", status_code=303)
