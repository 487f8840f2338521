"""File-system primitives with the write order the format relies on.

Every repository object is written to ``tmp/``, fsynced, renamed into place and its directory
fsynced. OS errors are translated here: ENOSPC/EDQUOT become StorageFullError, others
StorageError.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from backup.errors import StorageError, StorageFullError

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def translate(exc: OSError, what: str) -> StorageError | StorageFullError:
    if exc.errno in _FULL:
        return StorageFullError(f"no space left while {what}: {exc.strerror}; free space on the "
                                "repository device, then run again (the repository is intact)")
    return StorageError(f"I/O error while {what}: {exc}")


@contextlib.contextmanager
def io_errors(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise translate(exc, what) from exc


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_name(tmp_dir: Path, stem: str) -> Path:
    return tmp_dir / f"{stem}.{os.getpid()}.{secrets.token_hex(6)}.tmp"


def write_atomic(path: Path, data: bytes, tmp_dir: Path, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it."""
    tmp = tmp_name(tmp_dir, path.name)
    with io_errors(f"writing {path.name}"):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.rename(tmp, path)
            fsync_dir(path.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def publish(tmp: Path, path: Path) -> None:
    """Rename an already fsynced temporary file into place and make the rename durable."""
    with io_errors(f"publishing {path.name}"):
        path.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, path)
        fsync_dir(path.parent)


def remove(path: Path) -> None:
    with io_errors(f"removing {path.name}"), contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def read(path: Path) -> bytes:
    with io_errors(f"reading {path.name}"):
        return path.read_bytes()
