"""Log-in throttling that holds under concurrency: an attempt is reserved before its check.

Each log-in first records its attempt as a failure and counts the failures of its account and
of its source address in the window, in one short transaction that holds a lock on both keys;
only when neither count is over its limit is the password checked (outside any transaction:
argon2 takes tens of milliseconds), and a right password then turns its row into a success.
So at most ``max_failures_per_user`` checks ever run for one account in a window (and at most
``max_failures_per_ip`` for one address), however many requests arrive at once, and every
replica sharing the database obeys the same counts.

The lock: on PostgreSQL a transaction-scoped advisory lock per key (taken in a fixed order, so
two log-ins never deadlock); on SQLite the transaction's first statement is the INSERT, which
takes the database's write lock until the commit (SQLite has one writer at a time).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from dashboard.models.auth import LoginAttempt
from dashboard.settings import LoginThrottle


def throttled(failures_user: int, failures_ip: int, policy: LoginThrottle) -> bool:
    """Pure: refuse an attempt once a counter (this attempt included) is over its limit."""
    return (
        failures_user > policy.max_failures_per_user or failures_ip > policy.max_failures_per_ip
    )


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock id for ``name`` (PostgreSQL's bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def lock_keys(db: DbSession, names: list[str]) -> None:
    """Serialise transactions on ``names`` until this one ends (PostgreSQL); a no-op on SQLite,
    whose first write in a transaction locks the whole database."""
    if db.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({lock_key(n) for n in names}):
        db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def reserve_attempt(
    sm: sessionmaker[DbSession], *, who: str, ip: str, now: datetime, policy: LoginThrottle
) -> int | None:
    """Record an attempt by ``who`` from ``ip`` as a failure; its row id when the password may
    be checked, None when the account or the address is throttled (the row still counts)."""
    since = now - timedelta(seconds=policy.window_s)
    with sm.begin() as db:
        lock_keys(db, ["login:user:" + who, "login:ip:" + ip])
        attempt = LoginAttempt(username=who, ip=ip, at=now, success=False)
        db.add(attempt)
        db.flush()  # on SQLite the write lock is held from here to the commit
        failed = (LoginAttempt.at >= since) & LoginAttempt.success.is_(False)
        fails_user = db.scalar(select(func.count()).select_from(LoginAttempt).where(
            failed, LoginAttempt.username == who)) or 0
        fails_ip = db.scalar(select(func.count()).select_from(LoginAttempt).where(
            failed, LoginAttempt.ip == ip)) or 0
        return None if throttled(fails_user, fails_ip, policy) else attempt.id


def settle_success(db: DbSession, attempt_id: int) -> None:
    """The reserved attempt's password was right: it no longer counts as a failure."""
    db.execute(update(LoginAttempt).where(LoginAttempt.id == attempt_id).values(success=True))
