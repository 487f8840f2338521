"""Typed payloads of the host agent's kinds (host.*): card log-on and the operations log.

Registered in ``controller.events.KINDS`` with the role ``host_agent`` and their labels. Times
of what happened on the host (a journal entry, an audit record) are in ``at`` / ``first_at`` /
``last_at``; the envelope's ``ts`` is when the agent journaled the event. No payload carries a
file's content; file names are relative to their watched folder and, like every string of an
event, pass the node journal's number guard.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

_CFG = ConfigDict(extra="forbid", frozen=True)
Short = Annotated[str, Field(max_length=128)]
Text = Annotated[str, Field(max_length=512)]
# where in its source (journal cursor, audit log inode:offset) the agent had read when it
# journaled this event: set on the last event of each batch, so a restart resumes right there
Position = Annotated[str | None, Field(default=None, max_length=256)]

KIND_LOGON = "host.logon"
KIND_LOGOFF = "host.logoff"
KIND_LOCKED = "host.locked"
KIND_UNLOCKED = "host.unlocked"
KIND_SESSION = "host.session"
KIND_SUDO = "host.sudo"
KIND_AUTH_FAILED = "host.auth_failed"
KIND_FILE_ACCESS = "host.file_access"
KIND_HEALTH = "host.health"
KIND_OPLOG_GAP = "host.oplog_gap"

LogonDenialReason = Literal[
    "remote",  # PAM_RHOST set or a remote service: the card is never a factor there
    "no_policy",
    "no_reader",
    "no_card",
    "unknown_card",
    "inactive",
    "expired",
    "not_yet_valid",
    "wrong_account",  # the card's holder does not log on as this account
    "not_permitted",  # no group of the holder names this host
    "outside_schedule",
    "not_in_room",
    "presence_unknown",  # no fresh signed presence and [host].presence_unknown = "deny"
    "wrong_password",  # the card passed, the host's own password check did not
    "bad_caller",  # the request came from a process that may not ask for this account
]
Presence = Literal["in", "out", "unknown"]
LockReason = Literal["card_removed", "left_room"]
LogoffReason = Literal["card_away", "left_room"]
FileOp = Literal["read", "write", "create", "delete", "rename", "copy", "attr", "exec"]


class HostLogon(BaseModel):
    """host.logon: a local log-on (console, display manager, screen unlock) granted or denied.

    ``stage`` says where it was decided: ``password`` (the host's own password check failed;
    the card lying there, if any, is named) or ``card`` (the password passed; card, rights and
    presence decided). ``break_glass``: the audited recovery account, allowed without a
    card."""

    model_config = _CFG

    host: Short
    account: Short
    service: Short
    tty: Short = ""
    remote: bool = False
    granted: bool
    reason: LogonDenialReason | None = None
    stage: Literal["card", "password"] = "card"
    person_id: Short | None = None
    card: Short | None = None
    reader: Short | None = None
    presence: Presence | None = None
    break_glass: bool = False
    policy_version: int | None = None


class HostLocked(BaseModel):
    """host.locked: the agent locked an account's local sessions through logind (LockSession;
    a text console without a screen locker is terminated instead, ``terminated``)."""

    model_config = _CFG

    host: Short
    account: Short
    person_id: Short | None = None
    reason: LockReason
    sessions: list[Short] = Field(default_factory=list, max_length=64)
    terminated: list[Short] = Field(default_factory=list, max_length=64)
    ok: bool = True
    detail: Text = ""


class HostUnlocked(BaseModel):
    """host.unlocked: a locked account authenticated again (card and password)."""

    model_config = _CFG

    host: Short
    account: Short
    person_id: Short | None = None
    service: Short = ""
    card: Short | None = None


class HostLogoff(BaseModel):
    """host.logoff: the agent ended an account's local sessions (TerminateSession)."""

    model_config = _CFG

    host: Short
    account: Short
    person_id: Short | None = None
    reason: LogoffReason
    away_s: float | None = None
    sessions: list[Short] = Field(default_factory=list, max_length=64)
    ok: bool = True
    detail: Text = ""


class HostSession(BaseModel):
    """host.session: logind opened or removed a session (from the journal)."""

    model_config = _CFG

    host: Short
    action: Literal["opened", "closed"]
    session_id: Short
    account: Short | None = None
    uid: int | None = None
    person_id: Short | None = None
    at: datetime
    position: Position = None


class HostSudo(BaseModel):
    """host.sudo: sudo, su, pkexec or a polkit authorisation used (or refused), summarised per
    account and command when it repeats; ``admin_right`` is the policy's answer for the person
    at that time."""

    model_config = _CFG

    host: Short
    tool: Literal["sudo", "su", "pkexec", "polkit"]
    account: Short
    target: Short = "root"
    command: Text = ""
    tty: Short = ""
    ok: bool = True
    person_id: Short | None = None
    admin_right: bool | None = None
    count: int = Field(default=1, ge=1)
    at: datetime
    last_at: datetime | None = None
    position: Position = None


class HostAuthFailed(BaseModel):
    """host.auth_failed: failed authentications of one account at one service (and source),
    counted within a burst."""

    model_config = _CFG

    host: Short
    service: Short
    account: Short
    rhost: Short = ""
    person_id: Short | None = None
    count: int = Field(default=1, ge=1)
    at: datetime
    last_at: datetime | None = None
    position: Position = None


class HostFileAccess(BaseModel):
    """host.file_access: who read, wrote, deleted or copied files in a watched folder, with
    which program; a burst (a copy of a whole folder) is one event with the count and at most
    ``MAX_NAMES`` names (``names_omitted`` more)."""

    model_config = _CFG

    host: Short
    path_class: Short  # the watched folder's class, e.g. number_data, vault
    op: FileOp
    names: list[Text] = Field(default_factory=list, max_length=100)
    names_omitted: int = Field(default=0, ge=0)
    count: int = Field(default=1, ge=1)
    program: Text = ""
    account: Short | None = None
    person_id: Short | None = None
    success: bool = True
    at: datetime
    last_at: datetime | None = None
    position: Position = None


MAX_NAMES = 100


class DiskUse(BaseModel):
    model_config = _CFG

    mount: Short
    used_pct: float = Field(ge=0, le=100)
    free_mb: int = Field(ge=0)


class HostHealth(BaseModel):
    """host.health: the host's daily state (disk, failed units, last update, clock) and the
    agent's own counters."""

    model_config = _CFG

    host: Short
    disks: list[DiskUse] = Field(default_factory=list, max_length=32)
    failed_units: list[Short] = Field(default_factory=list, max_length=64)
    failed_units_known: bool = True
    last_update: datetime | None = None
    clock_synced: bool | None = None
    uptime_s: float | None = None
    readers: list[Short] = Field(default_factory=list, max_length=16)
    presence_fresh: bool = False
    counters: dict[str, int] = Field(default_factory=dict)


class HostOplogGap(BaseModel):
    """host.oplog_gap: entries of a source could not be read (the journal rotated past the
    stored cursor, the audit log was truncated): the agent says so instead of going on."""

    model_config = _CFG

    host: Short
    source: Literal["journal", "audit"]
    detail: Text
