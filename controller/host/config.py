"""The host agent's settings: the ``[host]`` table of the node config (one typed model)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_CFG = ConfigDict(extra="forbid", frozen=True)
CLASS_RE = re.compile(r"^[a-z][a-z0-9_]{0,22}$")
KEY_PREFIX = "secroom-"  # audit rule keys: secroom-<class> (auditctl allows 31 bytes)


class Watch(BaseModel):
    """A folder the audit rules watch (recursively): reads, writes, deletions, attribute
    changes and executions there become host.file_access events of its ``path_class``."""

    model_config = _CFG

    path: Path
    path_class: str = Field(description="e.g. number_data, vault (events say which)")

    @field_validator("path_class")
    @classmethod
    def _class(cls, value: str) -> str:
        if not CLASS_RE.fullmatch(value):
            raise ValueError("class must be 1-23 of a-z, 0-9 and _, starting with a letter")
        return value

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute() or str(value) == "/":
            raise ValueError("a watched folder is an absolute path below /")
        return value

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.path_class


class JournalSource(BaseModel):
    model_config = _CFG

    enabled: bool = True
    directory: Path | None = Field(
        default=None, description="journal files to read (default: this host's journal)")


class AuditSource(BaseModel):
    model_config = _CFG

    enabled: bool = True
    laurel_log: Path = Field(default=Path("/var/log/laurel/audit.log"),
                             description="laurel's JSON lines (the auditd plugin's output)")


class HostAgentConfig(BaseModel):
    model_config = _CFG

    host: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                      description="this host's name in the policy (groups' hosts)")
    socket: Path = Field(default=Path("/run/secroom/host-agent.sock"),
                         description="where the PAM helper asks the agent")
    readers: list[str] = Field(default_factory=list,
                               description="card readers of this host (name, or prefix*); "
                               "empty: every PC/SC reader")
    card_wait_s: float = Field(default=0.0, ge=0, le=30,
                               description="how long a log-on waits for the card to be laid")
    logoff_after_s: float = Field(default=600.0, ge=0,
                                  description="card away this long: the sessions are ended "
                                  "(0: never)")
    presence_max_age_s: float = Field(default=300.0, gt=0,
                                      description="older signed presence is unknown presence")
    presence_unknown: Literal["deny", "allow"] = Field(
        default="deny", description="log-on while presence is unknown (either way raised)")
    remote_services: list[str] = Field(
        default_factory=lambda: ["sshd", "xrdp-sesman", "cockpit", "remote"],
        description="PAM services that are remote even without PAM_RHOST")
    break_glass_accounts: list[str] = Field(
        default_factory=lambda: ["secroom-recovery"],
        description="recovery accounts allowed without a card (every use is raised)")
    tty_on_lock: Literal["terminate", "lock"] = Field(
        default="terminate", description="a text console has no screen locker: end it")
    logind_bus: str = Field(default="system",
                            description='"system", or a D-Bus address (tests)')
    journal: JournalSource = JournalSource()
    audit: AuditSource = AuditSource()
    watches: list[Watch] = Field(default_factory=list)
    health_interval_s: float = Field(default=86400.0, ge=60)
    state_dir: Path | None = Field(default=None,
                                   description="read positions (default: node data_dir)")
    caller_rate_per_min: int = Field(default=30, ge=1,
                                     description="requests a non-root caller may make")

    @model_validator(mode="after")
    def _unique_classes(self) -> HostAgentConfig:
        paths = [w.path for w in self.watches]
        if len(set(paths)) != len(paths):
            raise ValueError("a folder is watched twice")
        return self

    def watch_for_key(self, key: str) -> list[Watch]:
        return [w for w in self.watches if w.key == key]
