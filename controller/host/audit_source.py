"""File access in the watched folders, from laurel's JSON lines (auditd's plugin).

Why laurel's JSON and not auparse: auparse's Python binding (python3-audit) exists only for
Debian's own Python, not for the agent's virtual environment, while laurel (Debian package
laurel, an auditd plugin) already joins each event's SYSCALL, CWD, PATH and PROCTITLE records,
translates syscall numbers and user ids (``SYSCALL``, ``AUID``) and writes one JSON object per
event. The agent reads that file (a tail with its position persisted) and keeps only the events
of its own watch rules (keys ``secroom-<class>``, see audit_rules.py).

One event becomes one ``FileOpIn`` per file it touched: read, write, create, delete, rename,
attribute change, execution, or *copy* (a read by a copying program: cp, rsync, scp...). Names
are relative to the watched folder; only names, never content.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from controller.host.config import KEY_PREFIX, Watch

COPY_TOOLS = frozenset({"cp", "rsync", "scp", "sftp-server", "tar", "zip", "7z", "7za", "dd",
                        "install", "cpio", "rclone", "gio", "nautilus", "mc", "pv"})
_OPEN = frozenset({"open", "openat", "openat2", "creat", "open_by_handle_at"})
_DELETE = frozenset({"unlink", "unlinkat", "rmdir"})
_RENAME = frozenset({"rename", "renameat", "renameat2"})
_CREATE = frozenset({"mkdir", "mkdirat", "link", "linkat", "symlink", "symlinkat", "mknod",
                     "mknodat"})
_WRITE = frozenset({"truncate", "ftruncate"})
_ATTR_PREFIXES = ("chmod", "fchmod", "chown", "fchown", "lchown", "setxattr", "lsetxattr",
                  "fsetxattr", "removexattr", "lremovexattr", "fremovexattr", "utime",
                  "utimes", "utimensat", "futimesat")
_EXEC = frozenset({"execve", "execveat"})
O_ACCMODE, O_CREAT, O_TRUNC = 0o3, 0o100, 0o1000  # Linux open(2) flags
MAX_LINE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileOpIn:
    path_class: str
    op: str
    name: str
    program: str
    account: str | None
    success: bool
    at: datetime


class AuditParseError(ValueError):
    """A laurel line that is not an audit event this agent can read."""


def _when(event_id: str) -> datetime:
    stamp = event_id.split(":", 1)[0]
    return datetime.fromtimestamp(float(stamp), UTC)


def _int(value: Any) -> int:
    """A syscall argument as laurel writes it ("0x441"; auditd's raw form is hex too)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 16)
    raise ValueError(f"not an integer: {value!r}")


def _op(syscall: str, call: dict[str, Any], items: Sequence[dict[str, Any]], program: str
        ) -> str:
    if syscall in _OPEN:
        argv = call.get("ARGV") or []
        flags = 0
        try:
            if syscall == "openat" and len(argv) > 2:
                flags = _int(argv[2])
            elif syscall in ("open", "creat") and len(argv) > 1:
                flags = _int(argv[1]) if syscall == "open" else O_CREAT | 1
        except ValueError:
            flags = 0
        if any(i.get("nametype") == "CREATE" for i in items):
            return "create"
        if flags & O_ACCMODE or flags & O_TRUNC:
            return "write"
        return "copy" if program in COPY_TOOLS else "read"
    if syscall in _DELETE:
        return "delete"
    if syscall in _RENAME:
        return "rename"
    if syscall in _CREATE:
        return "create"
    if syscall in _WRITE:
        return "write"
    if syscall in _EXEC:
        return "exec"
    if syscall.startswith(_ATTR_PREFIXES):
        return "attr"
    if any(i.get("nametype") == "DELETE" for i in items):
        return "delete"
    return "read"


def _relative(name: str, cwd: str, root: Path) -> str:
    path = PurePosixPath(name if name.startswith("/") else f"{cwd.rstrip('/')}/{name}")
    parts: list[str] = []
    for part in path.parts[1:]:
        if part == "..":
            if parts:
                parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    full = PurePosixPath("/", *parts)
    try:
        rel = full.relative_to(root)
    except ValueError:
        return full.name  # outside the folder (the other end of a rename): its name only
    return str(rel) if str(rel) != "." else "."


def parse_laurel(line: bytes, watches: Sequence[Watch]) -> list[FileOpIn]:
    """The file operations of one laurel line (empty for events of other rules)."""
    if len(line) > MAX_LINE:
        raise AuditParseError("laurel line too long")
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise AuditParseError("laurel line is not JSON") from exc
    if not isinstance(event, dict):
        raise AuditParseError("laurel line is not a JSON object")
    call = event.get("SYSCALL")
    if not isinstance(call, dict):
        return []
    key = call.get("key")
    if not isinstance(key, str) or not key.startswith(KEY_PREFIX):
        return []
    mine = [w for w in watches if w.key == key]
    if not mine:
        return []
    try:
        at = _when(str(event.get("ID", "")))
    except ValueError as exc:
        raise AuditParseError("laurel event without a valid ID") from exc
    syscall = call.get("SYSCALL") if isinstance(call.get("SYSCALL"), str) else ""
    exe = call.get("exe") if isinstance(call.get("exe"), str) else ""
    program = os.path.basename(exe) or str(call.get("comm") or "")
    auid = call.get("AUID")
    account = auid if isinstance(auid, str) and auid not in ("unset", "") and \
        not auid.startswith("unknown(") else None
    success = call.get("success") == "yes"
    cwd = event.get("CWD", {}).get("cwd", "/") if isinstance(event.get("CWD"), dict) else "/"
    paths = event.get("PATH")
    items = [p for p in paths if isinstance(p, dict)] if isinstance(paths, list) else []
    touched = [p for p in items if p.get("nametype") != "PARENT" and isinstance(p.get("name"),
                                                                              str)]
    op = _op(syscall, call, items, program)
    out: list[FileOpIn] = []
    for watch in mine:
        if op == "rename":
            old = next((p["name"] for p in touched if p.get("nametype") == "DELETE"), "")
            new = next((p["name"] for p in touched if p.get("nametype") == "CREATE"), "")
            name = f"{_relative(old, cwd, watch.path)} -> {_relative(new, cwd, watch.path)}"
            out.append(FileOpIn(watch.path_class, op, name, exe, account, success, at))
            continue
        wanted = [p for p in touched if op != "delete" or p.get("nametype") == "DELETE"] or \
            touched
        for p in wanted[:8]:
            out.append(FileOpIn(watch.path_class, op, _relative(p["name"], cwd, watch.path),
                                exe, account, success, at))
    return out


class LaurelTail:
    """Reads laurel's log from a position ``"<inode>:<offset>"``, across one rotation.

    laurel rotates ``audit.log`` to ``audit.log.1``: when the file under the name is no longer
    the one the position names, the rest of the old file (found as ``.1`` by its inode) is read
    first. A position that cannot be found (rotated twice, truncated) is a gap: ``gap`` says
    so and reading starts at the current file's beginning."""

    def __init__(self, path: Path, position: str | None) -> None:
        self.path = path
        self.gap: str | None = None
        self._fh: Any = None
        self._inode = 0
        self._offset = 0
        self._open(position)

    @property
    def position(self) -> str:
        return f"{self._inode}:{self._offset}"

    def _open(self, position: str | None) -> None:
        inode, offset = 0, 0
        if position:
            try:
                a, b = position.split(":", 1)
                inode, offset = int(a), int(b)
            except ValueError:
                self.gap = f"stored audit position {position!r} unreadable"
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._fh, self._inode, self._offset = None, inode, offset
            return
        if inode and inode != st.st_ino:
            rotated = self.path.with_name(self.path.name + ".1")
            try:
                if rotated.stat().st_ino == inode:
                    self._fh = rotated.open("rb")
                    self._fh.seek(offset)
                    self._inode, self._offset = inode, offset
                    return
            except FileNotFoundError:
                pass
            self.gap = "the audit log rotated past the stored position"
            inode, offset = st.st_ino, 0
        elif inode and offset > st.st_size:
            self.gap = "the audit log was truncated below the stored position"
            offset = 0
        self._fh = self.path.open("rb")
        self._fh.seek(offset)
        self._inode, self._offset = st.st_ino, offset

    def read_lines(self, limit: int = 2000) -> list[tuple[bytes, str]]:
        """Complete lines available now, each with the position after it."""
        out: list[tuple[bytes, str]] = []
        if self._fh is None:
            self._open(self.position if self._inode else None)
            if self._fh is None:
                return out
        while len(out) < limit:
            start = self._fh.tell()
            line = self._fh.readline(MAX_LINE + 1)
            if not line:
                break
            if not line.endswith(b"\n"):
                self._fh.seek(start)  # a line still being written
                break
            self._offset = self._fh.tell()
            out.append((line, self.position))
        if not out and self._rotated():
            self._fh.close()
            st = self.path.stat()
            self._fh = self.path.open("rb")
            self._inode, self._offset = st.st_ino, 0
            return self.read_lines(limit)
        return out

    def _rotated(self) -> bool:
        try:
            return self.path.stat().st_ino != self._inode
        except FileNotFoundError:
            return False

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
