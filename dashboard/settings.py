"""The dashboard's one typed configuration, validated once at start (unknown keys are errors)."""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from controller.mqtt import MqttSettings
from dashboard.recovery.settings import DatabaseBackupSettings


class SettingsError(ValueError):
    """The dashboard configuration is missing, unreadable or invalid."""


class LoginThrottle(BaseModel):
    """Failed log-ins tolerated inside ``window_s`` before further attempts are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_s: int = Field(default=900, ge=1)
    max_failures_per_user: int = Field(default=5, ge=1)
    max_failures_per_ip: int = Field(default=20, ge=1)


class HomeAssistantSettings(BaseModel):
    """Home Assistant MQTT discovery of doors, nodes and lockdown (dashboard.hass); opt-in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[A-Za-z0-9_-]{1,64}$")


def _mask_url(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class ReplicaSettings(BaseModel):
    """One of N dashboard replicas on one PostgreSQL (dashboard.replicas). Every replica
    shares the database, the broker, the policy key file and the session secret file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # a node's ingest lease lasts this long past its holder's last heartbeat: a dead
    # replica's nodes move to another after at most about this
    lease_s: float = Field(default=4.0, ge=1.0, le=60.0)
    renew_s: float = Field(default=1.0, ge=0.1, le=30.0)

    @model_validator(mode="after")
    def _renew_often(self) -> ReplicaSettings:
        if self.renew_s * 2 > self.lease_s:
            raise ValueError("renew_s must be at most half of lease_s")
        return self


class CameraStoreSettings(BaseModel):
    """Camera stills (dashboard.camera): where their storage key is, how long they are kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_file: Path | None = None  # 32 random bytes, created 0600 on first use (data_dir/camera.key)
    retention_days: int = Field(default=90, ge=1, le=3650)
    max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)


class DashboardSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Path("/var/lib/secroom/dashboard")
    artifacts_dir: Path | None = None
    database_url: str = ""
    site: str = Field(default="site1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # many sites (a central dashboard behind bridged site brokers, hardware/central/): the
    # other sites it ingests and signs the policy for, besides ``site``
    sites: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]] = Field(
        default_factory=list, max_length=5000)
    timezone: str = "Asia/Tokyo"
    default_language: Literal["ja", "en"] = "ja"
    policy_key_file: Path | None = None
    session_secret_file: Path | None = None
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    session_idle_s: int = Field(default=3600, ge=60)
    # how long the temporary password an admin's reset gives a user keeps working
    temporary_password_ttl_s: int = Field(default=24 * 3600, ge=300, le=7 * 86400)
    https: bool = False
    # load balancers in front of the dashboard (hardware/central/haproxy.cfg): their
    # X-Forwarded-For names the browser's address (log-in throttle, audit); nobody else's is
    # believed. Empty: the peer's own address, as on a single box.
    trusted_proxies: list[Annotated[str, Field(pattern=r"^[0-9A-Fa-f:./]{2,64}$")]] = Field(
        default_factory=list, max_length=64)
    login_throttle: LoginThrottle = LoginThrottle()
    mqtt: MqttSettings | None = None
    gap_timeout_s: float = Field(default=60.0, gt=0)
    # a node's clock this far off ours (its state message's time) is raised as clock_skew
    clock_skew_s: float = Field(default=120.0, gt=0)
    # how long a signed policy is valid; the signer issues a fresh one at half of it
    policy_ttl_s: int = Field(default=7 * 86400, ge=3600)
    # "chain": each event authenticated by its hash chain up to a checked signature before it
    # is stored, every other signature checked right after (dashboard.ingest.verify);
    # "every": every signature checked before storing (slower: one Ed25519 check per event)
    ingest_verify: Literal["chain", "every"] = "chain"
    # the nightly database backup (dashboard.recovery); none: the database is not backed up
    backup: DatabaseBackupSettings | None = None
    demo: bool = False
    home_assistant: HomeAssistantSettings = HomeAssistantSettings()
    # set on each of N replicas sharing one PostgreSQL; none: the single box, as before
    replica: ReplicaSettings | None = None
    camera: CameraStoreSettings = CameraStoreSettings()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value

    @model_validator(mode="after")
    def _defaults_under_data_dir(self) -> DashboardSettings:
        if not self.database_url:
            object.__setattr__(
                self, "database_url", f"sqlite:///{self.data_dir / 'dashboard.sqlite3'}"
            )
        if self.session_secret_file is None:
            object.__setattr__(self, "session_secret_file", self.data_dir / "session.secret")
        if self.policy_key_file is None:
            object.__setattr__(self, "policy_key_file", self.data_dir / "policy.key")
        if self.replica is not None and not self.database_url.startswith("postgresql"):
            raise ValueError("replica needs a PostgreSQL database_url: replicas share one "
                             "database (SQLite is the single box)")
        if self.home_assistant.enabled and self.mqtt is None:
            raise ValueError("home_assistant needs [dashboard.mqtt]: discovery goes through "
                             "the dashboard's broker link")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def __repr_args__(self):  # type: ignore[no-untyped-def]
        for name, value in super().__repr_args__():
            yield name, (_mask_url(value) if name == "database_url" else value)

    def session_secret(self) -> bytes:
        """The server-side pepper for session and token hashes; created 0600 on first use."""
        path = self.session_secret_file
        assert path is not None
        try:
            raw = path.read_bytes().strip()
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            raw = secrets.token_hex(32).encode()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw + b"\n")
        except OSError as exc:
            raise SettingsError(f"cannot read session secret {path}: {exc.strerror}") from exc
        if len(raw) < 32:
            raise SettingsError(f"session secret {path} is shorter than 32 bytes; regenerate it")
        return raw


def load_settings(path: Path) -> DashboardSettings:
    """Read a TOML file with a [dashboard] table (or the table's keys at top level)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SettingsError(f"config file {path} not found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from exc
    table = raw.get("dashboard", raw)
    try:
        return DashboardSettings.model_validate(table)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'dashboard'}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"invalid dashboard config {path}: {problems}") from exc
