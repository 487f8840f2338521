"""Event payloads of the backup job and the emit callable it hands them to.

Payloads carry counts, sizes, durations, ids and results. They never carry file contents,
keys or passphrases. Vault paths appear only when ``BackupConfig.events_include_paths`` is on,
because file and folder names in a My Number vault are often personal data (employee names).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field


class Emit(Protocol):
    """The node runtime's ``emit``: ``data`` is the kind's model (controller.events.KINDS)."""

    def __call__(self, kind: str, data: BaseModel, /) -> Any: ...


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Result = Literal["ok", "failed"]


class BackupSnapshot(_Payload):
    """backup.snapshot: a run finished and its snapshot is durable in the repository."""

    snapshot_id: str
    result: Literal["ok"] = "ok"
    started: str  # UTC ISO 8601
    duration_s: float
    files: int
    dirs: int
    symlinks: int
    files_new: int
    files_changed: int
    files_unchanged: int
    files_removed: int
    bytes_total: int  # logical size of all files in the snapshot
    bytes_read: int  # bytes read and chunked this run
    bytes_new: int  # logical bytes of chunks not yet in the repository
    bytes_stored: int  # bytes written to new packs (compressed + encrypted)
    repo_bytes: int  # size of the repository after the run
    skipped: int  # entries that could not be read (counted, named only on the terminal)
    paths: list[str] | None = None


class BackupFailed(_Payload):
    """backup.failed: a run, prune, purge or restore did not complete."""

    stage: Literal["run", "prune", "purge", "restore", "verify", "drill"]
    result: Literal["failed"] = "failed"
    error: str  # class: locked, disk_full, integrity, key, io, config, not_found, error
    message: str  # safe text (no paths, no secrets)
    exit_code: int
    duration_s: float


class BackupVerified(_Payload):
    """backup.verified: a verify (structure, or read-data with the key) or a restore drill."""

    mode: Literal["structure", "read_data", "drill"]
    result: Result
    duration_s: float
    packs: int = 0
    snapshots: int = 0
    blobs: int = 0
    bytes_checked: int = 0
    problems: int = 0
    files_sampled: int = 0
    mismatches: int = 0
    snapshot_id: str | None = None


class BackupPruned(_Payload):
    """backup.pruned: retention (prune) or a deletion duty (purge) rewrote the repository."""

    mode: Literal["prune", "purge"]
    result: Literal["ok"] = "ok"
    duration_s: float
    snapshots_removed: int = 0
    snapshots_kept: int = 0
    snapshots_changed: list[str] = Field(default_factory=list)  # purge: old id -> new id pairs
    packs_deleted: int = 0
    packs_rewritten: int = 0
    blobs_removed: int = 0
    bytes_freed: int = 0
    repo_bytes: int = 0
