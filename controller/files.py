"""Files that hold records or secrets are created private (0600), before anything opens them.

SQLite creates a database with the process umask (0644 on most systems) and gives its WAL and
shared-memory files the database file's mode, so creating the file first, 0600, keeps all
three private. An existing file with a wider mode is narrowed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE = 0o600


def create_private(path: Path) -> None:
    """Make sure ``path`` exists with mode 0600 (created without following a link)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, PRIVATE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, PRIVATE)
    finally:
        os.close(fd)
