"""The [backup] section of the gateway configuration, also usable on its own (backup.toml)."""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backup.errors import ConfigError


class Retention(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep_daily: int = Field(default=14, ge=0)
    keep_weekly: int = Field(default=8, ge=0)
    keep_monthly: int = Field(default=24, ge=0)


class BackupConfig(BaseModel):
    """Everything the gateway needs to write snapshots. It holds no secret that decrypts them."""

    model_config = ConfigDict(extra="forbid")

    repository: Path
    vault_paths: list[Path] = Field(min_length=1)
    public_key_file: Path  # the operators' X25519 public key (from `backup keygen`)
    dedup_key_file: Path  # 32 random bytes (hex); created on the first run if missing
    cache_dir: Path
    schedule: time = time(2, 0)
    timezone: str = "Asia/Tokyo"
    retention: Retention = Field(default_factory=Retention)
    excludes: list[str] = Field(default_factory=list)  # fnmatch patterns on vault-relative paths
    events_include_paths: bool = False  # vault names may be personal data: counts only by default
    pack_size_mb: int = Field(default=16, ge=1, le=256)
    threads: int = Field(default=0, ge=0, le=64)  # 0 = one per CPU
    # (backup/worker.py) 1 by default: on 60,000 small files it is faster than restic with
    # all its processes under 100 MB (89 MB); 2 is faster still but about 112 MB; 0 leaves
    # small files to the threads, whose walking thread's GIL then paces a vault of tiny files
    small_file_workers: int = Field(default=1, ge=0, le=8)  # processes for small files; <= threads
    compression_level: int = Field(default=3, ge=1, le=19)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def load_config(path: Path, section: str | None = "backup") -> BackupConfig:
    """Read a TOML file; use its [backup] table if present, else the whole file."""
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    if section and isinstance(raw.get(section), dict):
        raw = raw[section]
    try:
        return BackupConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid backup config:\n{exc}") from exc
