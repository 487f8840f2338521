"""A dashboard user's credential lifecycle: deactivate, reactivate, reset the password, end the
sessions, and the user's own password change.

Each function works in the caller's transaction (the caller audits and commits) and returns
the ids of the sessions it ended; once committed, the caller hands them to
``AuthService.announce_ended`` so this process's live streams close at once (a deleted session
is refused at the next request everywhere, a stream of another replica sees it at its next
check).

Password reset: the dashboard generates a temporary password, shown once to the admin, which
replaces the old one at once (a leaked old password stops working the moment the admin acts),
expires after ``DashboardSettings.temporary_password_ttl_s`` and lets its session do nothing
but set the user's own password. Letting the user keep logging in with the old password until
they choose a new one would leave a stolen password working, and whoever used it first would
choose the next one.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DbSession

from dashboard.auth.passwords import hash_password, verify_password
from dashboard.auth.roles import Role
from dashboard.auth.service import AuthError, check_scope
from dashboard.auth.throttle import lock_keys
from dashboard.models.auth import Session, User

ADMINS_LOCK = "auth:active-admins"


class LastAdminError(AuthError):
    """The change would leave no active admin (nobody could manage users any more)."""


def end_sessions(db: DbSession, user_id: int, *, keep: int | None = None) -> list[int]:
    """Delete a user's sessions (all, or all but ``keep``: the caller's own)."""
    where = Session.user_id == user_id
    if keep is not None:
        where &= Session.id != keep
    ids = list(db.scalars(select(Session.id).where(where)))
    if ids:
        db.execute(delete(Session).where(Session.id.in_(ids)))
    return ids


def set_active(db: DbSession, user: User, active: bool) -> list[int]:
    """Deactivate (no log-in, sessions end, API tokens refused) or reactivate a user.

    The last active admin cannot be deactivated. Two admins deactivating each other at the
    same moment are serialised (an advisory lock on PostgreSQL, the write lock on SQLite), so
    one of them is refused."""
    if user.active == active:
        return []
    lock_keys(db, [ADMINS_LOCK])
    user.active = active
    db.flush()  # on SQLite this first write holds the database until the commit
    if not active and user.role == Role.admin.value:
        admins = db.scalar(select(func.count()).select_from(User).where(
            User.role == Role.admin.value, User.active.is_(True))) or 0
        if admins == 0:
            raise LastAdminError("the last active admin cannot be deactivated")
    return end_sessions(db, user.id) if not active else []


def set_scope(db: DbSession, user: User, site: str | None,
              client_id: int | None) -> list[int]:
    """Limit ``user`` to one site or one client company, or lift the limit (both None). The
    rules are ``check_scope``'s (a site for a security admin or an auditor, a client for an
    auditor). The user's sessions end: a page or live stream opened under the old scope does
    not go on showing what the new one hides; the next log-in has the new scope."""
    if client_id is not None:
        from dashboard.models.reports import Client

        if db.get(Client, client_id) is None:
            raise AuthError(f"no client company {client_id}")
    check_scope(user.role, site, client_id)
    if (user.site, user.client_id) == (site, client_id):
        return []
    user.site, user.client_id = site, client_id
    db.flush()
    return end_sessions(db, user.id)


def reset_password(db: DbSession, user: User, now: datetime, ttl_s: int) -> tuple[str, list[int]]:
    """Give ``user`` a generated temporary password (returned, shown once, never stored);
    it expires after ``ttl_s`` and must be replaced at log-in. Every session ends."""
    temporary = secrets.token_urlsafe(12)  # 16 characters, 96 bits
    user.password_hash = hash_password(temporary)
    user.must_change_password = True
    user.password_expires_at = now + timedelta(seconds=ttl_s)
    return temporary, end_sessions(db, user.id)


def set_own_password(db: DbSession, user: User, new: str, *, keep: int | None) -> list[int]:
    """The user sets their own password (the caller has checked the current one, throttled,
    with ``AuthService.check_password``); their other sessions end."""
    if verify_password(user.password_hash, new):
        raise AuthError("choose a password other than the current one")
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.password_expires_at = None
    return end_sessions(db, user.id, keep=keep)
