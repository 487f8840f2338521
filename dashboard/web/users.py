"""Dashboard users and API tokens (admins only); every change goes into the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.audit import append_audit
from dashboard.auth.passwords import PasswordPolicyError
from dashboard.auth.service import AuthError, AuthService, Principal
from dashboard.models.auth import ApiToken, User
from dashboard.web import deps

router = APIRouter()


def _page(request: Request, db: DbSession, *, error: str = "", token: str = "",
          status: int = 200) -> Response:
    users = list(db.scalars(select(User).order_by(User.username)))
    tokens = list(db.scalars(select(ApiToken).order_by(ApiToken.id.desc())))
    return deps.render(request, "users.html", {
        "users": users, "tokens": tokens, "error": error, "new_token": token,
    }, status)


@router.get("/users", name="users.page", include_in_schema=False)
def users_page(request: Request, db: Annotated[DbSession, Depends(deps.db)]) -> Response:
    return _page(request, db)


@router.post("/users", name="users.create", include_in_schema=False)
def users_create(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    username: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=32)],
    password: Annotated[str, Form(max_length=1024)],
    display_name: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    auth: AuthService = request.app.state.auth
    now = deps.now(request)
    try:
        user = auth.create_user(db, username=username, role=role, password=password, now=now,
                                display_name=display_name)
    except (AuthError, PasswordPolicyError) as exc:
        db.rollback()
        return _page(request, db, error=str(exc), status=400)
    append_audit(db, actor=who.username, action="user.create", target_type="user",
                 target_id=user.username, before=None,
                 after={"username": user.username, "role": user.role}, now=now)
    db.commit()
    return RedirectResponse("/users?msg=common.saved", status_code=303)


@router.post("/users/tokens", name="users.token_create", include_in_schema=False)
def token_create(
    request: Request, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
    username: Annotated[str, Form(max_length=64)],
    name: Annotated[str, Form(min_length=1, max_length=128)],
    scopes: Annotated[list[str], Form()],
    ttl_days: Annotated[int, Form(ge=0, le=3650)] = 0,
) -> Response:
    auth: AuthService = request.app.state.auth
    now = deps.now(request)
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        return _page(request, db, error=f"no user {username!r}", status=404)
    try:
        row, secret = auth.create_token(db, user_id=user.id, name=name, scopes=set(scopes),
                                        now=now, ttl_s=ttl_days * 86400 or None)
    except AuthError as exc:
        db.rollback()
        return _page(request, db, error=str(exc), status=400)
    append_audit(db, actor=who.username, action="token.create", target_type="api_token",
                 target_id=str(row.id), before=None,
                 after={"name": row.name, "user": user.username, "scopes": row.scopes,
                        "prefix": row.prefix}, now=now)
    db.commit()
    return _page(request, db, token=secret, status=201)


@router.post("/users/tokens/{token_id}/revoke", name="users.token_revoke",
             include_in_schema=False)
def token_revoke(
    request: Request, token_id: int, db: Annotated[DbSession, Depends(deps.db)],
    who: Annotated[Principal, Depends(deps.principal)],
) -> Response:
    row = db.get(ApiToken, token_id)
    if row is None:
        return _page(request, db, error=f"no token {token_id}", status=404)
    if row.revoked_at is None:
        now = deps.now(request)
        row.revoked_at = now
        append_audit(db, actor=who.username, action="token.revoke", target_type="api_token",
                     target_id=str(row.id), before={"revoked": False}, after={"revoked": True},
                     now=now)
        db.commit()
    return RedirectResponse("/users?msg=common.saved", status_code=303)
