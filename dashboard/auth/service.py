"""Log-in with throttling, server-side sessions, scoped API tokens: all hashed at rest."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from dashboard.auth.passwords import hash_password, needs_rehash, verify_password
from dashboard.auth.roles import SCOPES, Role
from dashboard.auth.throttle import reserve_attempt, settle_success
from dashboard.models.auth import ApiToken, Session, User, as_utc
from dashboard.settings import DashboardSettings
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
    # logged in with a temporary password: may only set a new one (or log out)
    must_change_password: bool = False
    # the account's scope (dashboard.auth.scope); None: every site / every client
    site: str | None = None
    client_id: int | None = None

    @property
    def scoped(self) -> bool:
        return self.site is not None or self.client_id is not None


def check_scope(role: str, site: str | None, client_id: int | None) -> None:
    """A site scope for a security admin or an auditor of one site; a client scope for a
    client company's auditor only; an admin is never scoped (it runs the whole installation:
    users, node keys, the broker), nor a backup operator (backups are not divided by site)."""
    if site is not None and client_id is not None:
        raise AuthError("an account is scoped to one site or to one client, not both")
    if site is not None and (role not in (Role.security_admin, Role.auditor) or not site
                             or len(site) > 64):
        raise AuthError("only a security admin or an auditor can be limited to a site "
                        "(1 to 64 characters)")
    if client_id is not None and role != Role.auditor:
        raise AuthError("only an auditor can be limited to a client company")


@dataclass(frozen=True)
class LoginResult:
    outcome: Literal["ok", "bad_credentials", "throttled", "expired"]
    session_token: str = field(default="", repr=False)
    principal: Principal | None = None


def temporary_password_expired(user: User, now: datetime) -> bool:
    """Pure: a temporary password (set by an admin's reset) stops working at its expiry."""
    return user.password_expires_at is not None and now >= as_utc(user.password_expires_at)


def session_expired(session: Session, now: datetime, idle_s: int) -> bool:
    """Pure: a session ends at its absolute expiry or after ``idle_s`` without a request."""
    return now >= as_utc(session.expires_at) or now - as_utc(session.last_seen_at) >= timedelta(
        seconds=idle_s
    )


class AuthService:
    def __init__(
        self, settings: DashboardSettings, sm: sessionmaker[DbSession],
        on_sessions_ended: Callable[[list[int]], None] | None = None,
    ) -> None:
        self._settings = settings
        self._sm = sm
        self._pepper = settings.session_secret()
        self._on_sessions_ended = on_sessions_ended

    def _digest(self, token: str) -> str:
        return hmac.new(self._pepper, token.encode(), hashlib.sha256).hexdigest()

    # users ---------------------------------------------------------------------------------
    def create_user(
        self, db: DbSession, *, username: str, role: str, password: str, now: datetime,
        display_name: str = "", site: str | None = None, client_id: int | None = None,
    ) -> User:
        if role not in Role.__members__:
            raise AuthError(f"unknown role {role!r}; choose one of {', '.join(Role)}")
        check_scope(role, site, client_id)
        username = guard_text(username, "username")
        display_name = guard_text(display_name, "display_name")
        if not username or len(username) > 64 or not username.isprintable():
            raise AuthError("username must be 1 to 64 printable characters")
        if db.scalar(select(User.id).where(User.username == username)) is not None:
            raise AuthError(f"user {username!r} already exists")
        user = User(
            username=username, role=role, password_hash=hash_password(password),
            display_name=display_name, active=True, created_at=now, site=site,
            client_id=client_id,
        )
        db.add(user)
        db.flush()
        return user

    # log-in --------------------------------------------------------------------------------
    def check_password(
        self, username: str, password: str, ip: str, now: datetime
    ) -> tuple[Literal["ok", "bad_credentials", "throttled", "expired"], User | None, int]:
        """Reserve the attempt (throttle), then check the password: the outcome, the user as
        read before the check, and the reserved attempt's id (settled by the caller).

        See ``dashboard.auth.throttle``: the attempt is recorded before the check, so a burst
        of concurrent guesses gets at most the limit of checks and a right password sent
        inside it is refused while the account or the address is throttled."""
        username = username[:64]
        ip = ip[:64]
        with self._sm() as db:
            user = db.scalar(select(User).where(User.username == username))
        # a name that is nobody's is often a password typed into the wrong field (or an
        # individual number): the attempt keeps only a keyed digest of it, which still
        # throttles guesses at that name
        who = username if user is not None else "?" + self._digest("login:" + username)[:40]
        attempt = reserve_attempt(self._sm, who=who, ip=ip, now=now,
                                  policy=self._settings.login_throttle)
        if attempt is None:
            return "throttled", None, 0
        stored = user.password_hash if user is not None else None
        if not verify_password(stored, password) or user is None or not user.active:
            return "bad_credentials", None, attempt
        if temporary_password_expired(user, now):
            return "expired", None, attempt
        return "ok", user, attempt

    def login(self, username: str, password: str, ip: str, now: datetime) -> LoginResult:
        """Check the password (throttled), then open a session."""
        outcome, checked, attempt = self.check_password(username, password, ip, now)
        if outcome != "ok" or checked is None:
            return LoginResult("bad_credentials" if outcome == "ok" else outcome)
        stored = checked.password_hash
        with self._sm.begin() as db:
            user = db.get(User, checked.id)
            # deactivated, or given another password, while this one was being checked
            if user is None or not user.active or user.password_hash != stored:
                return LoginResult("bad_credentials")
            settle_success(db, attempt)
            if needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            # sessions that ended are only ever removed here and on their next use
            db.execute(delete(Session).where(Session.expires_at <= now))
            token = secrets.token_urlsafe(32)
            csrf = secrets.token_urlsafe(32)
            row = Session(
                token_hash=self._digest(token), csrf_token=csrf, user_id=user.id, created_at=now,
                last_seen_at=now, ip=ip[:64],
                expires_at=now + timedelta(seconds=self._settings.session_max_age_s),
            )
            db.add(row)
            db.flush()
            return LoginResult("ok", token, self._principal(user, row))

    def logout(self, session_id: int) -> None:
        with self._sm.begin() as db:
            db.execute(delete(Session).where(Session.id == session_id))
        self.announce_ended([session_id])

    def announce_ended(self, session_ids: list[int]) -> None:
        """Tell this process's live streams that these sessions ended (after the commit)."""
        if session_ids and self._on_sessions_ended is not None:
            self._on_sessions_ended(sorted(session_ids))

    def session_active(self, session_id: int, now: datetime) -> bool:
        """Whether a session still stands (long-lived streams ask this now and then)."""
        with self._sm() as db:
            row = db.get(Session, session_id)
            return row is not None and row.user.active and not session_expired(
                row, now, self._settings.session_idle_s)

    @staticmethod
    def _principal(user: User, row: Session) -> Principal:
        return Principal(
            user.id, user.username, Role(user.role), "session", user.language, row.csrf_token,
            session_id=row.id, must_change_password=user.must_change_password,
            site=user.site, client_id=user.client_id,
        )

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
            return self._principal(user, row)

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
                scopes=row.scope_set, site=user.site, client_id=user.client_id,
            )
