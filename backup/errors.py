"""The backup engine's errors. Each carries a documented exit code and a short event class.

``public`` is a message safe for events (no file names, no secrets); ``str(err)`` may name
paths and is for the operator's terminal only.
"""

from __future__ import annotations


class BackupError(Exception):
    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or self.default_public

    default_public = "backup error"


class ConfigError(BackupError):
    exit_code = 8
    kind = "config"
    default_public = "configuration or key file problem"


class LockedError(BackupError):
    exit_code = 3
    kind = "locked"
    default_public = "repository is locked by another live process"


class IntegrityError(BackupError):
    exit_code = 4
    kind = "integrity"
    default_public = "repository integrity check failed"


class KeyError_(BackupError):  # noqa: N801 - avoids shadowing the builtin KeyError
    exit_code = 5
    kind = "key"
    default_public = "wrong key or passphrase"


class StorageFullError(BackupError):
    exit_code = 6
    kind = "disk_full"
    default_public = "no space left on the repository or cache device"


class StorageError(BackupError):
    exit_code = 7
    kind = "io"
    default_public = "input/output error on the repository or the vault"


class NotFoundError(BackupError):
    exit_code = 9
    kind = "not_found"
    default_public = "snapshot or repository not found"
