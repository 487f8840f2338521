"""Store parsed rows idempotently, map operators and terminals, raise the import's anomalies.

``row_key`` = SHA-256 over the source and the redacted, normalised row, so importing the same
file (or an overlapping export) again stores nothing twice. Rows are flushed, then correlated at
once (``Correlator.on_rows``), in the same transaction as the batch record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from dashboard.anomalies import raise_anomaly
from dashboard.correlation.engine import Correlator, rows_by_keys
from dashboard.correlation.store import PersistResult
from dashboard.models.numlog import NumberAccess, NumlogBatch, OperatorMap, TerminalMap
from dashboard.models.people import Person
from dashboard.numlog.classify import classify
from dashboard.numlog.parse import ParsedRow, ParseResult


@dataclass
class ImportReport:
    batch_id: int
    source: str
    encoding: str
    preset: str
    total: int
    stored: int
    duplicate: int
    bad: int
    redacted: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    findings: PersistResult | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "source": self.source, "encoding": self.encoding,
                "preset": self.preset, "total": self.total, "stored": self.stored,
                "duplicate": self.duplicate, "bad": self.bad, "redacted": self.redacted,
                "errors": self.errors,
                "new_findings": len(self.findings.new) if self.findings else 0}


def row_key(source: str, row: ParsedRow) -> str:
    payload = "\x1f".join([source, *row.normalised()])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Mappings:
    operators: dict[tuple[str, str], tuple[str, str | None]]  # (source|"", operator) -> person
    terminals: dict[str, str]

    def person(self, source: str, operator: str) -> tuple[str | None, str | None]:
        hit = self.operators.get((source, operator)) or self.operators.get(("", operator))
        return hit if hit else (None, None)


def load_mappings(session: Session) -> Mappings:
    ops: dict[tuple[str, str], tuple[str, str | None]] = {}
    for pid, ids in session.execute(select(Person.id, Person.operator_ids)):
        for op in ids or ():
            ops.setdefault(("", str(op)), (pid, None))
    for m in session.scalars(select(OperatorMap)):
        ops[(m.source, m.operator)] = (m.person_id, m.host)
    terms = {t.terminal: t.host for t in session.scalars(select(TerminalMap))}
    return Mappings(ops, terms)


def _existing_keys(session: Session, keys: Sequence[str]) -> set[str]:
    have: set[str] = set()
    for i in range(0, len(keys), 500):
        have.update(session.scalars(select(NumberAccess.row_key).where(
            NumberAccess.row_key.in_(list(keys[i : i + 500])))))
    return have


def store_rows(session: Session, parsed: ParseResult, *, source: str, now: datetime,
               actor: str = "", filename: str = "", file_sha256: str = "",
               correlator: Correlator | None = None) -> ImportReport:
    """Store the good rows of ``parsed`` that are new; record the batch; raise anomalies for
    numbers found in bad rows (good rows' numbers are findings of the correlation)."""
    maps = load_mappings(session)
    batch = NumlogBatch(source=source, filename=filename[:255], file_sha256=file_sha256,
                        encoding=parsed.encoding, preset=parsed.preset, imported_at=now,
                        imported_by=actor, rows_total=parsed.total, errors=parsed.errors[:1000])
    session.add(batch)
    session.flush()
    keyed = [(row_key(source, r), r) for r in parsed.rows]
    have = _existing_keys(session, [k for k, _ in keyed])
    fresh: list[dict[str, Any]] = []
    seen: set[str] = set()
    for k, r in keyed:
        if k in have or k in seen:
            continue
        seen.add(k)
        category, ok = classify(r.action, r.result)
        person, default_host = maps.person(source, r.operator)
        host = maps.terminals.get(r.terminal) if r.terminal else None
        fresh.append({
            "row_key": k, "source": source, "batch_id": batch.id, "line": r.line, "no": r.no,
            "office": r.office, "ts": r.ts, "screen": r.screen, "action": r.action,
            "purpose": r.purpose, "operator": r.operator, "result": r.result,
            "terminal": r.terminal, "category": category, "ok": ok, "person_id": person,
            "host": host or default_host or (r.terminal or None),
            "redacted_fields": list(r.redacted_fields),
        })
    for i in range(0, len(fresh), 5000):
        session.execute(insert(NumberAccess), fresh[i : i + 5000])
    redacted = sum(1 for r in parsed.rows if r.redacted_fields)
    for err in parsed.errors:
        if err.get("redacted"):
            raise_anomaly(
                session, "numlog.number_found", now=now, severity="critical",
                dedupe_key=f"{source}:{file_sha256[:16] or batch.id}:{err['line']}",
                subject=f"individual number in {source} line {err['line']} (row rejected)",
                detail={"source": source, "file": filename[:255], "line": err["line"],
                        "fields": err["redacted"], "batch": batch.id},
            )
            redacted += 1
    batch.rows_stored = len(fresh)
    batch.rows_duplicate = len(parsed.rows) - len(fresh)
    batch.rows_bad = len(parsed.errors)
    batch.rows_redacted = redacted
    session.flush()
    findings = None
    if fresh:
        rows = rows_by_keys(session, [r["row_key"] for r in fresh])
        findings = (correlator or Correlator()).on_rows(session, rows, now)
    return ImportReport(batch_id=batch.id, source=source, encoding=parsed.encoding,
                        preset=parsed.preset, total=parsed.total, stored=len(fresh),
                        duplicate=batch.rows_duplicate, bad=batch.rows_bad, redacted=redacted,
                        errors=parsed.errors, findings=findings)
