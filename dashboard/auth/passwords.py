"""Password hashing: the only module that imports argon2-cffi."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 12

# argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): affordable on a Pi that
# also runs the gateway, and still memory-hard.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# A real hash to verify against when the user does not exist, so timing does not reveal it.
_DUMMY_HASH = _hasher.hash("secroom-dummy-password-for-timing")


class PasswordPolicyError(ValueError):
    """A new password does not meet the minimum requirements."""


def check_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing or corrupt hash is simply a mismatch."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
