"""Log-in with throttling, server-side sessions, scoped API tokens: all hashed at rest."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from dashboard.auth.passwords import hash_password, needs_rehash, verify_password
from dashboard.auth.roles import SCOPES, Role
from dashboard.models.auth import ApiToken, LoginAttempt, Session, User, as_utc
from dashboard.settings import DashboardSettings, LoginThrottle
from dashboard.textguard import guard_text

TOKEN_PREFIX = "srt_"  # noqa: S105 - a public marker, not a secret


class AuthError(ValueError):
    """A user, token or credential request is invalid (bad role, duplicate name, bad scope)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user through a browser session or through a scoped API token."""

    user_id: int
    username: str
    role: Role
    via: Literal["session", "token"]
    language: str | None = None
    csrf_token: str = field(default="", repr=False)
    scopes: frozenset[str] = frozenset()
    session_id: int | None = None


@dataclass(frozen=True)
class LoginResult:
    outcome: Literal["ok", "bad_credentials", "throttled"]
    session_token: str = field(default="", repr=False)
    principal: Principal | None = None


def throttled(failures_user: int, failures_ip: int, policy: LoginThrottle) -> bool:
    """Pure: refuse further attempts once either counter reaches its limit in the window."""
    return (
        failures_user >= policy.max_failures_per_user or failures_ip >= policy.max_failures_per_ip
    )


def session_expired(session: Session, now: datetime, idle_s: int) -> bool:
    """Pure: a session ends at its absolute expiry or after ``idle_s`` without a request."""
    return now >= as_utc(session.expires_at) or now - as_utc(session.last_seen_at) >= timedelta(
        seconds=idle_s
    )


class AuthService:
    def __init__(self, settings: DashboardSettings, sm: sessionmaker[DbSession]) -> None:
        self._settings = settings
        self._sm = sm
        self._pepper = settings.session_secret()

    def _digest(self, token: str) -> str:
        return hmac.new(self._pepper, token.encode(), hashlib.sha256).hexdigest()

    # users ---------------------------------------------------------------------------------
    def create_user(
        self, db: DbSession, *, username: str, role: str, password: str, now: datetime,
        display_name: str = "",
    ) -> User:
        if role not in Role.__members__:
            raise AuthError(f"unknown role {role!r}; choose one of {', '.join(Role)}")
        username = guard_text(username, "username")
        display_name = guard_text(display_name, "display_name")
        if not username or len(username) > 64 or not username.isprintable():
            raise AuthError("username must be 1 to 64 printable characters")
        if db.scalar(select(User.id).where(User.username == username)) is not None:
            raise AuthError(f"user {username!r} already exists")
        user = User(
            username=username, role=role, password_hash=hash_password(password),
            display_name=display_name, active=True, created_at=now,
        )
        db.add(user)
        db.flush()
        return user

    # log-in --------------------------------------------------------------------------------
    def login(self, username: str, password: str, ip: str, now: datetime) -> LoginResult:
        policy = self._settings.login_throttle
        since = now - timedelta(seconds=policy.window_s)
        username = username[:64]
        ip = ip[:64]
        with self._sm.begin() as db:
            user = db.scalar(select(User).where(User.username == username))
            # a name that is nobody's is often a password typed into the wrong field (or an
            # individual number): the attempt keeps only a keyed digest of it, which still
            # throttles guesses at that name
            who = username if user is not None else "?" + self._digest("login:" + username)[:40]
            fails_user = db.scalar(
                select(func.count()).select_from(LoginAttempt).where(
                    LoginAttempt.username == who, LoginAttempt.at >= since,
                    LoginAttempt.success.is_(False),
                )
            ) or 0
            fails_ip = db.scalar(
                select(func.count()).select_from(LoginAttempt).where(
                    LoginAttempt.ip == ip, LoginAttempt.at >= since,
                    LoginAttempt.success.is_(False),
                )
            ) or 0
            if throttled(fails_user, fails_ip, policy):
                db.add(LoginAttempt(username=who, ip=ip, at=now, success=False))
                return LoginResult("throttled")
            ok = verify_password(user.password_hash if user else None, password)
            if not ok or user is None or not user.active:
                db.add(LoginAttempt(username=who, ip=ip, at=now, success=False))
                return LoginResult("bad_credentials")
            if needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            db.add(LoginAttempt(username=username, ip=ip, at=now, success=True))
            # sessions that ended are only ever removed here and on their next use
            db.execute(delete(Session).where(Session.expires_at <= now))
            token = secrets.token_urlsafe(32)
            csrf = secrets.token_urlsafe(32)
            row = Session(
                token_hash=self._digest(token), csrf_token=csrf, user_id=user.id, created_at=now,
                last_seen_at=now, ip=ip,
                expires_at=now + timedelta(seconds=self._settings.session_max_age_s),
            )
            db.add(row)
            db.flush()
            principal = Principal(
                user.id, user.username, Role(user.role), "session", user.language, csrf,
                session_id=row.id,
            )
            return LoginResult("ok", token, principal)

    def logout(self, session_id: int) -> None:
        with self._sm.begin() as db:
            db.execute(delete(Session).where(Session.id == session_id))

    def resolve_session(self, token: str, now: datetime) -> Principal | None:
        if not token or len(token) > 128:
            return None
        with self._sm.begin() as db:
            row = db.scalar(select(Session).where(Session.token_hash == self._digest(token)))
            if row is None:
                return None
            user = row.user
            if session_expired(row, now, self._settings.session_idle_s) or not user.active:
                db.delete(row)
                return None
            if now - as_utc(row.last_seen_at) >= timedelta(seconds=30):
                row.last_seen_at = now
            return Principal(
                user.id, user.username, Role(user.role), "session", user.language,
                row.csrf_token, session_id=row.id,
            )

    # API tokens ----------------------------------------------------------------------------
    def create_token(
        self, db: DbSession, *, user_id: int, name: str, scopes: set[str], now: datetime,
        ttl_s: int | None = None,
    ) -> tuple[ApiToken, str]:
        """Returns the stored row and the secret, which is shown once and never stored."""
        bad = set(scopes) - SCOPES
        if bad or not scopes:
            raise AuthError(f"scopes must be a non-empty subset of {sorted(SCOPES)}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(
            name=guard_text(name, "name")[:128], prefix=secret[:12],
            token_hash=self._digest(secret),
            scopes=" ".join(sorted(scopes)), user_id=user_id, created_at=now,
            expires_at=now + timedelta(seconds=ttl_s) if ttl_s else None,
        )
        db.add(row)
        db.flush()
        return row, secret

    def resolve_token(self, secret: str, now: datetime) -> Principal | None:
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
            return None
        with self._sm.begin() as db:
            row = db.scalar(select(ApiToken).where(ApiToken.token_hash == self._digest(secret)))
            if row is None or row.revoked_at is not None or not row.user.active:
                return None
            if row.expires_at is not None and now >= as_utc(row.expires_at):
                return None
            if row.last_used_at is None or now - as_utc(row.last_used_at) >= timedelta(minutes=1):
                row.last_used_at = now
            user = row.user
            return Principal(
                user.id, user.username, Role(user.role), "token", user.language,
                scopes=row.scope_set,
            )
