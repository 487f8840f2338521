"""``[dashboard.backup]``: the dashboard's nightly database backup into the room's repository."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class DatabaseBackupSettings(BaseModel):
    """Where and when the dashboard backs up its database. Like the gateway, it holds no secret
    that decrypts a snapshot: the operators' public key and the repository's dedup key only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: Path  # the gateway's repository (local disk or NAS mount)
    public_key_file: Path  # the operators' backup.pub
    dedup_key_file: Path  # the repository's dedup key (the gateway's dedup.key; a new
    #                       repository gets a new one)
    cache_dir: Path | None = None  # default: data_dir/backup-cache
    schedule: time = time(1, 30)  # local time (the dashboard's timezone); before the vault's
    # the dashboard's policy signing key, sealed once more to the operators' key: a recovered
    # dashboard then signs policies the nodes already trust (README, "Recovering the dashboard")
    include_policy_key: bool = True
    # the gateway's nightly run may hold the repository's lock meanwhile. Retention is the
    # gateway's nightly prune's: it keeps each series (vault, database) on its own
    lock_wait_s: float = Field(default=1800.0, ge=0)
