"""An exclusive repository lock that survives crashes: a stale lock of a dead process clears.

The lock file is written completely to a temporary name and then hard-linked to
``locks/lock`` (link fails if the name exists), so a lock is never seen half-written. It
records host, pid and the process start time (from /proc), so a reused pid is not mistaken for
the owner. A lock from another host is respected: remove it by hand after checking that host.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from backup.errors import LockedError
from backup.storage import fsync_dir, io_errors, tmp_name


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(owner: dict[str, object]) -> bool:
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    start = _start_time(pid)
    if start is None:
        return False
    # zombie processes are dead owners too
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
    return owner.get("start") in (None, start)


def owner_is_stale(owner: dict[str, object]) -> bool:
    return owner.get("host") == socket.gethostname() and not _alive(owner)


@contextlib.contextmanager
def repository_lock(locks_dir: Path, purpose: str) -> Iterator[None]:
    path = locks_dir / "lock"
    me = {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid()),
          "purpose": purpose}
    tmp = tmp_name(locks_dir, "lock")  # not in tmp/, which the lock holder empties
    with io_errors("taking the repository lock"):
        tmp.write_text(json.dumps(me))
        try:
            for _ in range(5):
                try:
                    os.link(tmp, path)
                    fsync_dir(locks_dir)
                    break
                except FileExistsError:
                    _clear_if_stale(path, locks_dir)
            else:
                raise LockedError("could not take the repository lock")
        finally:
            os.unlink(tmp)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _clear_if_stale(path: Path, locks_dir: Path) -> None:
    try:
        owner = json.loads(path.read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        owner = {}
    if not isinstance(owner, dict) or not owner_is_stale(owner):
        raise LockedError(
            f"repository is locked by {owner.get('purpose', '?')} pid {owner.get('pid', '?')} on "
            f"{owner.get('host', '?')}; wait for it, or if that process is gone on another "
            f"host, remove {path} by hand")
    # Move the stale lock aside first: only one of several racing clearers wins the rename.
    aside = tmp_name(locks_dir, "stale-lock")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    try:
        moved = json.loads(aside.read_text())
    except (OSError, ValueError):
        moved = {}
    if moved != owner and not (isinstance(moved, dict) and owner_is_stale(moved)):
        # a live process locked in between: put its lock back unless yet another took over
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
        os.unlink(aside)
        raise LockedError("repository lock changed hands while clearing a stale lock")
    os.unlink(aside)
