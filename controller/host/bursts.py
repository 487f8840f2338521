"""Operations become events; bursts are summarised, never dropped (pure, given the clock).

Repeated operations of one kind by one account (a copy of 10,000 files, a password tried 500
times) are gathered while they keep coming and become one event with the count, the first and
last time and, for files, at most ``MAX_NAMES`` names (the rest counted in ``names_omitted``).
Sessions are never gathered: each opening and closing is its own event. ``due`` says when the
gathered operations should be journaled: the source has been quiet for ``quiet_s``, the oldest
has waited ``max_s``, they would make ``max_events`` events, or ``max_ops`` are held (memory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from controller.host.audit_source import FileOpIn
from controller.host.classify import AuthFailOp, SessionOp, SudoOp
from controller.host.events import (
    KIND_AUTH_FAILED,
    KIND_FILE_ACCESS,
    KIND_SESSION,
    KIND_SUDO,
    MAX_NAMES,
    HostAuthFailed,
    HostFileAccess,
    HostSession,
    HostSudo,
)

Op = SessionOp | SudoOp | AuthFailOp | FileOpIn
# account -> (person_id, has the administrator's right on this host)
Resolve = Callable[[str | None], tuple[str | None, bool | None]]


@dataclass
class _Group:
    first: Any
    at: datetime
    last_at: datetime
    count: int = 1
    names: dict[str, None] = field(default_factory=dict)
    omitted: int = 0


def _key(op: Op) -> tuple[Any, ...] | None:
    if isinstance(op, SudoOp):
        return ("sudo", op.tool, op.account, op.target, op.command, op.tty, op.ok)
    if isinstance(op, AuthFailOp):
        return ("auth", op.service, op.account, op.rhost)
    if isinstance(op, FileOpIn):
        return ("file", op.path_class, op.op, op.program, op.account, op.success)
    return None


class Bursts:
    def __init__(self, host: str, *, quiet_s: float = 1.0, max_s: float = 30.0,
                 max_events: int = 250, max_ops: int = 200_000) -> None:
        self.host = host
        self.quiet_s, self.max_s, self.max_ops = quiet_s, max_s, max_ops
        self.max_events = max_events
        self._groups: dict[tuple[Any, ...], _Group] = {}
        self._order: list[tuple[Any, ...] | int] = []
        self._singles: dict[int, SessionOp] = {}
        self._held = 0
        self._first_mono: float | None = None
        self._last_mono = 0.0

    @property
    def held(self) -> int:
        return self._held

    def add(self, op: Op, mono: float) -> None:
        if self._first_mono is None:
            self._first_mono = mono
        self._last_mono = mono
        self._held += 1
        key = _key(op)
        if key is None:
            self._singles[len(self._order)] = op  # type: ignore[assignment]
            self._order.append(len(self._order))
            return
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(op, op.at, op.at)
            self._order.append(key)
        else:
            group.count += 1
            group.at = min(group.at, op.at)
            group.last_at = max(group.last_at, op.at)
        if isinstance(op, FileOpIn):
            if op.name in group.names:
                pass
            elif len(group.names) < MAX_NAMES:
                group.names[op.name] = None
            else:
                group.omitted += 1

    def due(self, mono: float) -> bool:
        if self._first_mono is None:
            return False
        return (mono - self._last_mono >= self.quiet_s or mono - self._first_mono >= self.max_s
                or len(self._order) >= self.max_events or self._held >= self.max_ops)

    def drain(self, resolve: Resolve) -> list[tuple[str, BaseModel]]:
        """The held operations as events, in the order each first came; then empty."""
        out: list[tuple[str, BaseModel]] = []
        for item in self._order:
            if isinstance(item, int):
                op = self._singles[item]
                person, _ = resolve(op.account)
                out.append((KIND_SESSION, HostSession(
                    host=self.host, action=op.action, session_id=op.session_id[:128],
                    account=op.account, person_id=person, at=op.at)))
                continue
            out.append(self._event(self._groups[item], resolve))
        self._groups, self._order, self._singles = {}, [], {}
        self._held, self._first_mono = 0, None
        return out

    def _event(self, g: _Group, resolve: Resolve) -> tuple[str, BaseModel]:
        op = g.first
        last = g.last_at if g.count > 1 else None
        if isinstance(op, SudoOp):
            person, admin = resolve(op.account)
            return KIND_SUDO, HostSudo(
                host=self.host, tool=op.tool, account=op.account[:128], target=op.target[:128],
                command=op.command[:512], tty=op.tty[:128], ok=op.ok, person_id=person,
                admin_right=admin, count=g.count, at=g.at, last_at=last)
        if isinstance(op, AuthFailOp):
            person, _ = resolve(op.account)
            return KIND_AUTH_FAILED, HostAuthFailed(
                host=self.host, service=op.service[:128], account=op.account[:128],
                rhost=op.rhost[:128], person_id=person, count=g.count, at=g.at, last_at=last)
        assert isinstance(op, FileOpIn)
        person, _ = resolve(op.account)
        return KIND_FILE_ACCESS, HostFileAccess(
            host=self.host, path_class=op.path_class, op=op.op,
            names=[n[:512] for n in g.names], names_omitted=g.omitted, count=g.count,
            program=op.program[:512], account=op.account, person_id=person,
            success=op.success, at=g.at, last_at=last)
