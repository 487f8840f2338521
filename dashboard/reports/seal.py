"""The report's seal: head hashes of every node's log and of the audit log for the period, and a
digest of the number-access rows; and ``verify``, which recomputes everything from the database.

Node events are re-hashed from their stored content and their signatures checked with the node's
enrolled key, so editing an event (even re-hashing it) or removing one is detected. Number-access
rows are re-keyed from their stored columns (the row key is a hash of the row) and the period's
keys digested, so an edited, added or removed row is detected. The audit log is verified as a
whole chain and its head at the end of the period must still carry the sealed hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.envelope import (
    GENESIS,
    SCHEMA_VERSION,
    body_hash,
    canonical_json,
    format_ts,
    unb64u,
)
from controller.keys import KeyFileError, public_from_b64
from dashboard.audit import verify_audit
from dashboard.models.audit import AuditRecord
from dashboard.models.events import StoredEvent
from dashboard.models.nodes import Node
from dashboard.models.numlog import NumberAccess
from dashboard.numlog.parse import ParsedRow
from dashboard.numlog.store import row_key

SEAL_VERSION = 1


def compute_seal(session: Session, since: datetime, until: datetime) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for name, lo, hi, n in session.execute(
        select(StoredEvent.node, func.min(StoredEvent.seq), func.max(StoredEvent.seq),
               func.count()).where(StoredEvent.ts >= since, StoredEvent.ts < until)
        .group_by(StoredEvent.node).order_by(StoredEvent.node)
    ):
        first_prev = session.scalar(select(StoredEvent.prev).where(
            StoredEvent.node == name, StoredEvent.seq == lo))
        head = session.scalar(select(StoredEvent.hash).where(
            StoredEvent.node == name, StoredEvent.seq == hi))
        nodes[name] = {"first_seq": lo, "first_prev": first_prev, "head_seq": hi,
                       "head_hash": head, "events": n}
        # defects already there when sealing (a gap, a broken link) are recorded, so that
        # verify reports only what changed afterwards
        probe = VerifyResult(ok=True)
        _verify_node(session, name, nodes[name], probe, 5000)
        nodes[name]["known"] = sorted(set(probe.problems))
    last = session.execute(
        select(AuditRecord.seq, AuditRecord.hash).where(AuditRecord.at < until)
        .order_by(AuditRecord.seq.desc()).limit(1)).first()
    audit = {"head_seq": last[0] if last else 0, "head_hash": last[1] if last else GENESIS}
    digest, count = _rows_digest(session, since, until)
    return {"v": SEAL_VERSION, "since": format_ts(since), "until": format_ts(until),
            "nodes": nodes, "audit": audit,
            "number_access": {"rows": count, "digest": digest}}


def seal_sha256(seal: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(seal)).hexdigest()


def _rows_digest(session: Session, since: datetime, until: datetime) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    for (k,) in session.execute(select(NumberAccess.row_key).where(
            NumberAccess.ts >= since, NumberAccess.ts < until).order_by(NumberAccess.row_key)):
        h.update(k.encode())
        n += 1
    return h.hexdigest(), n


@dataclass
class VerifyResult:
    ok: bool
    problems: list[str] = field(default_factory=list)
    checked_events: int = 0
    checked_rows: int = 0


def verify(session: Session, seal: dict[str, Any], *, batch: int = 5000) -> VerifyResult:
    res = VerifyResult(ok=True)
    since = datetime.fromisoformat(seal["since"].replace("Z", "+00:00"))
    until = datetime.fromisoformat(seal["until"].replace("Z", "+00:00"))
    for name, info in sorted(seal.get("nodes", {}).items()):
        probe = VerifyResult(ok=True)
        _verify_node(session, name, info, probe, batch)
        known = set(info.get("known", ()))
        res.problems += [p for p in dict.fromkeys(probe.problems) if p not in known]
        res.checked_events += probe.checked_events
    audit = seal.get("audit", {})
    report = verify_audit(session)
    if not report.ok:
        res.problems.append("audit log: " + "; ".join(report.problems[:5]))
    if audit.get("head_seq"):
        head = session.scalar(
            select(AuditRecord.hash).where(AuditRecord.seq == audit["head_seq"]))
        if head != audit.get("head_hash"):
            res.problems.append(
                f"audit log: record {audit['head_seq']} differs from the sealed head")
    # rows: each key recomputed from the stored row; the period's keys digested
    h = hashlib.sha256()
    n = 0
    for r in session.scalars(select(NumberAccess).where(
            NumberAccess.ts >= since, NumberAccess.ts < until).order_by(NumberAccess.row_key)):
        n += 1
        h.update(r.row_key.encode())
        parsed = ParsedRow(line=r.line, no=r.no, office=r.office, ts=r.ts, screen=r.screen,
                           action=r.action, purpose=r.purpose, operator=r.operator,
                           result=r.result, terminal=r.terminal, redacted_fields=())
        if row_key(r.source, parsed) != r.row_key:
            res.problems.append(f"number-access row {r.source} line {r.line} was altered")
    res.checked_rows = n
    sealed = seal.get("number_access", {})
    if n != sealed.get("rows") or h.hexdigest() != sealed.get("digest"):
        res.problems.append(f"number-access rows of the period changed ({sealed.get('rows')} "
                            f"sealed, {n} now)")
    res.ok = not res.problems
    return res


def _verify_node(session: Session, name: str, info: dict[str, Any], res: VerifyResult,
                 batch: int) -> None:
    node = session.get(Node, name)
    if node is None:
        res.problems.append(f"node {name}: no longer known")
        return
    key = None
    if node.public_key:
        try:
            key = public_from_b64(node.public_key)
        except KeyFileError:
            key = None
    expected, prev = info["first_seq"], info["first_prev"]
    last = info["first_seq"] - 1
    bad = 0
    while True:
        rows = session.scalars(select(StoredEvent).where(
            StoredEvent.node == name, StoredEvent.seq > last, StoredEvent.seq <= info["head_seq"]
        ).order_by(StoredEvent.seq).limit(batch)).all()
        if not rows:
            break
        for ev in rows:
            res.checked_events += 1
            if ev.seq != expected:
                res.problems.append(f"node {name}: events {expected}..{ev.seq - 1} removed")
            body = {"v": SCHEMA_VERSION, "node": ev.node, "site": node.site, "seq": ev.seq,
                    "id": f"{ev.node}:{ev.seq}", "ts": format_ts(ev.ts), "boot": ev.boot,
                    "clock": ev.clock, "kind": ev.kind, "data": ev.data, "prev": ev.prev}
            if body_hash(body) != ev.hash or ev.prev != prev:
                bad += 1
                if bad <= 5:
                    res.problems.append(f"node {name}: event {ev.seq} was altered")
            elif key is not None:
                try:
                    key.verify(unb64u(ev.sig), bytes.fromhex(ev.hash))
                except (InvalidSignature, ValueError):
                    res.problems.append(f"node {name}: event {ev.seq} has a bad signature")
            prev, expected, last = ev.hash, ev.seq + 1, ev.seq
    if last != info["head_seq"]:
        res.problems.append(f"node {name}: events {last + 1}..{info['head_seq']} removed")
    elif prev != info["head_hash"]:
        res.problems.append(f"node {name}: head {info['head_seq']} differs from the seal")
