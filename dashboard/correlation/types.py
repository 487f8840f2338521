"""Typed inputs of the rules (no ORM objects: rules are pure) and their output, ``FindingOut``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class AccessIn:
    key: str  # row_key (a hash of the redacted row)
    ts: datetime
    source: str
    line: int
    no: str
    operator: str
    person_id: str | None
    host: str | None
    category: str  # login, access, export
    ok: bool
    purpose: str = ""
    action: str = ""
    redacted_fields: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.source}#{self.no or '-'}@L{self.line}"


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime | None  # None: an exit without a recorded entry
    end: datetime | None  # None: still inside
    door: str = ""
    ref: str = ""


@dataclass(frozen=True, slots=True)
class UsbIn:
    ref: str  # node:seq
    ts: datetime
    host: str
    verdict: str
    storage: bool
    control_number: str | None = None
    device: str = ""
    vendor_product: str = ""


@dataclass(frozen=True, slots=True)
class PrintIn:
    ref: str
    ts: datetime
    person_id: str | None
    printer: str
    pages: int | None = None


@dataclass(frozen=True, slots=True)
class DoorIncidentIn:
    ref: str
    ts: datetime
    kind: str  # door.forced or door.held_open
    door: str
    node: str


@dataclass(frozen=True, slots=True)
class BackupIn:
    ref: str
    ts: datetime
    ok: bool
    node: str
    stage: str = "run"
    error: str = ""


@dataclass(frozen=True, slots=True)
class LoanIn:
    control_number: str
    holder: str
    due_back: datetime
    returned_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LogIssueIn:
    node: str
    kind: str  # gap or chain
    ts: datetime
    first: int
    last: int


@dataclass(frozen=True)
class FindingOut:
    key: str
    rule: str
    severity: str
    at: datetime
    subject: str
    ja: str
    en: str
    evidence: dict[str, Any] = field(default_factory=dict)
    person_id: str | None = None
    node: str | None = None


@dataclass
class Outcome:
    """What an evaluation produced: findings, and keys it checked and found clear."""

    found: list[FindingOut] = field(default_factory=list)
    cleared: set[str] = field(default_factory=set)

    def add(self, key: str, finding: FindingOut | None) -> None:
        if finding is None:
            self.cleared.add(key)
        else:
            self.found.append(finding)

    def extend(self, other: Outcome) -> None:
        self.found.extend(other.found)
        self.cleared |= other.cleared
