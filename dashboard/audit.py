"""The hash-chained audit log: every admin action, who, when, before and after.

Each record's ``hash`` is SHA-256 over the canonical JSON of its content and the previous
record's hash (``GENESIS`` for the first), so removing, reordering or editing any record breaks
the chain from there on; ``verify_audit`` walks it and reports the first break.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import Enum
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from controller.envelope import GENESIS, canonical_json, format_ts
from dashboard.models.audit import AuditRecord

_PG_AUDIT_LOCK = 0x5EC_A0D17  # advisory lock id serialising appends on PostgreSQL


def jsonable(value: Any) -> Any:
    """Turn a snapshot into plain JSON types, deterministically (for hashing and storage)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    raise TypeError(f"cannot record a {type(value).__name__} in the audit log")


def record_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    before: Any,
    after: Any,
    prev: str,
) -> str:
    content = {
        "seq": seq,
        "at": format_ts(at),
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "before": before,
        "after": after,
        "prev": prev,
    }
    return hashlib.sha256(canonical_json(content)).hexdigest()


def append_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    before: Any,
    after: Any,
    now: datetime,
) -> AuditRecord:
    """Append one record in the caller's transaction (committed with the change it records)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    last = session.execute(
        select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    before_j, after_j = jsonable(before), jsonable(after)
    digest = record_hash(
        seq=seq,
        at=now,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before_j,
        after=after_j,
        prev=prev,
    )
    record = AuditRecord(
        seq=seq,
        at=now,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before_j,
        after=after_j,
        prev=prev,
        hash=digest,
    )
    session.add(record)
    session.flush()
    return record


@dataclass
class AuditReport:
    ok: bool
    records: int
    head: str
    problems: list[str] = field(default_factory=list)
    first_bad_seq: int | None = None


def verify_audit(session: Session, *, batch: int = 5000) -> AuditReport:
    """Walk the whole chain: contiguous seq from 1, prev links and recomputed hashes."""
    prev, expected, count = GENESIS, 1, 0
    problems: list[str] = []
    first_bad: int | None = None
    last_seq = 0
    while True:
        rows = session.scalars(
            select(AuditRecord)
            .where(AuditRecord.seq > last_seq)
            .order_by(AuditRecord.seq)
            .limit(batch)
        ).all()
        if not rows:
            break
        for rec in rows:
            count += 1
            if rec.seq != expected:
                problems.append(f"records {expected}..{rec.seq - 1} are missing")
            if rec.prev != prev:
                problems.append(f"record {rec.seq} does not link to the previous record")
            digest = record_hash(
                seq=rec.seq,
                at=rec.at,
                actor=rec.actor,
                action=rec.action,
                target_type=rec.target_type,
                target_id=rec.target_id,
                before=rec.before,
                after=rec.after,
                prev=rec.prev,
            )
            if digest != rec.hash:
                problems.append(f"record {rec.seq} was altered (hash mismatch)")
            if problems and first_bad is None:
                first_bad = rec.seq
            prev, expected, last_seq = rec.hash, rec.seq + 1, rec.seq
    return AuditReport(
        ok=not problems, records=count, head=prev, problems=problems, first_bad_seq=first_bad
    )
