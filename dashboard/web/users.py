"""Dashboard users and API tokens (admins only): create, deactivate and reactivate a user,
reset a password (a temporary one, shown once), log a user out everywhere; issue and revoke
tokens. Every change goes into the audit log; ended sessions end their live streams at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession
from starlette.responses import Response

from dashboard.audit import append_audit
from dashboard.auth.lifecycle import end_sessions, reset_password, set_active, set_scope
from dashboard.auth.passwords import PasswordPolicyError
from dashboard.auth.service import AuthError, AuthService, Principal
from dashboard.models.auth import ApiToken, Session, User
from dashboard.models.nodes import Node
from dashboard.models.reports import Client
from dashboard.web import deps

router = APIRouter()


def _page(request: Request, db: DbSession, *, error: str = "", token: str = "",
          temporary: tuple[str, str] | None = None, status: int = 200) -> Response:
    users = list(db.scalars(select(User).order_by(User.username)))
    tokens = list(db.scalars(select(ApiToken).order_by(ApiToken.id.desc())))
    live = db.execute(select(Session.user_id, func.count()).where(
        Session.expires_at > deps.now(request)).group_by(Session.user_id))
    return deps.render(request, "users.html", {
        "users": users, "tokens": tokens, "error": error, "new_token": token,
        "sessions": {uid: n for uid, n in live}, "temporary": temporary,
        # scoped accounts (many sites): the client company's name, not its id
        "client_names": {cid: name for cid, name in db.execute(
            select(Client.id, Client.name).order_by(Client.name))},
        "sites": known_sites(request, db),
    }, status)


def known_sites(request: Request, db: DbSession) -> list[str]:
    """The sites an account may be limited to: the configured ones and those of the nodes."""
    settings = deps.settings(request)
    return sorted({settings.site, *settings.sites, *db.scalars(select(Node.site).distinct())})


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
    site: Annotated[str, Form(max_length=64)] = "",
    client: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    auth: AuthService = request.app.state.auth
    now = deps.now(request)
    try:
        site_, client_id = _scope_of(request, db, site, client)
        user = auth.create_user(db, username=username, role=role, password=password, now=now,
                                display_name=display_name, site=site_, client_id=client_id)
    except (AuthError, PasswordPolicyError) as exc:
        db.rollback()
        return _page(request, db, error=str(exc), status=400)
    append_audit(db, actor=who.username, action="user.create", target_type="user",
                 target_id=user.username, before=None,
                 after={"username": user.username, "role": user.role,
                        **_scope_dict(user)}, now=now)
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
    request: Request, token_id: deps.RowId, db: Annotated[DbSession, Depends(deps.db)],
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


# -- a user's lifecycle -----------------------------------------------------------------------


def target_user(user_id: deps.RowId, db: Annotated[DbSession, Depends(deps.db)]) -> User:
    """The user a lifecycle action is about (the path's ``user_id``)."""
    user = db.get(User, user_id)
    if user is None:
        raise HTTPException(status_code=404, detail=f"no user {user_id}")
    return user


Target = Annotated[User, Depends(target_user)]
Db = Annotated[DbSession, Depends(deps.db)]
Caller = Annotated[Principal, Depends(deps.principal)]


def _audited(request: Request, db: DbSession, who: Principal, action: str, user: User,
             before: dict[str, Any] | None, after: dict[str, Any], ended: list[int]) -> None:
    """Audit the action, commit, then end the ended sessions' live streams in this process."""
    append_audit(db, actor=who.username, action=action, target_type="user",
                 target_id=user.username, before=before, after=after, now=deps.now(request))
    db.commit()
    request.app.state.auth.announce_ended(ended)


@router.post("/users/{user_id}/deactivate", name="users.deactivate", include_in_schema=False)
def user_deactivate(request: Request, user: Target, db: Db, who: Caller) -> Response:
    """No more log-ins, every session ends, the user's API tokens are refused."""
    try:
        ended = set_active(db, user, False)
    except AuthError:
        db.rollback()
        return _page(request, db, error=deps.translator(request)("users.last_admin"),
                     status=409)
    _audited(request, db, who, "user.deactivate", user, {"active": True},
             {"active": False, "sessions_ended": len(ended)}, ended)
    return RedirectResponse("/users?msg=common.saved", status_code=303)


@router.post("/users/{user_id}/reactivate", name="users.reactivate", include_in_schema=False)
def user_reactivate(request: Request, user: Target, db: Db, who: Caller) -> Response:
    if not user.active:
        set_active(db, user, True)
        _audited(request, db, who, "user.reactivate", user, {"active": False},
                 {"active": True}, [])
    return RedirectResponse("/users?msg=common.saved", status_code=303)


@router.post("/users/{user_id}/password-reset", name="users.password_reset",
             include_in_schema=False)
def user_password_reset(request: Request, user: Target, db: Db, who: Caller) -> Response:
    """A generated temporary password, shown once: it replaces the old one at once, expires,
    and must be replaced by the user's own at log-in. Every session of the user ends."""
    t = deps.translator(request)
    if user.id == who.user_id:
        return _page(request, db, error=t("users.reset_yourself"), status=400)
    ttl = deps.settings(request).temporary_password_ttl_s
    temporary, ended = reset_password(db, user, deps.now(request), ttl)
    expires = user.password_expires_at
    _audited(request, db, who, "user.password_reset", user, None,
             {"must_change_password": True, "expires_at": expires,
              "sessions_ended": len(ended)}, ended)
    shown = t("users.temporary_shown_once", user=user.username, password=temporary,
              until=t.time(expires))
    return _page(request, db, temporary=(user.username, shown))


def _scope_of(request: Request, db: DbSession, site: str, client: str
              ) -> tuple[str | None, int | None]:
    """The scope a form chose: a site the installation knows, a client company's id, or
    neither (headquarters)."""
    if site and site not in known_sites(request, db):
        raise AuthError(f"no site {site!r}")
    if client and not client.isdigit():
        raise AuthError(f"no client company {client!r}")
    return site or None, int(client) if client else None


def _scope_dict(user: User) -> dict[str, Any]:
    return {"site": user.site, "client_id": user.client_id}


@router.post("/users/{user_id}/scope", name="users.scope", include_in_schema=False)
def user_scope(request: Request, user: Target, db: Db, who: Caller,
               site: Annotated[str, Form(max_length=64)] = "",
               client: Annotated[str, Form(max_length=12)] = "") -> Response:
    """Limit an account to one site or one client company, or lift the limit (admins; the
    rules are ``check_scope``'s). Audited; the account's sessions end (``set_scope``)."""
    before = _scope_dict(user)
    try:
        site_, client_id = _scope_of(request, db, site, client)
        ended = set_scope(db, user, site_, client_id)
    except AuthError:
        db.rollback()
        return _page(request, db, error=deps.translator(request)("users.scope_invalid"),
                     status=400)
    if _scope_dict(user) != before:
        _audited(request, db, who, "user.scope", user, before,
                 {**_scope_dict(user), "sessions_ended": len(ended)}, ended)
    return RedirectResponse("/users?msg=common.saved", status_code=303)


@router.post("/users/{user_id}/sessions/end", name="users.sessions_end", include_in_schema=False)
def user_sessions_end(request: Request, user: Target, db: Db, who: Caller) -> Response:
    """Log a user out everywhere (for yourself: everywhere but here)."""
    keep = who.session_id if user.id == who.user_id else None
    ended = end_sessions(db, user.id, keep=keep)
    _audited(request, db, who, "user.sessions_end", user, None,
             {"sessions_ended": len(ended)}, ended)
    return RedirectResponse("/users?msg=common.saved", status_code=303)
