"""Store findings idempotently and raise an anomaly (through dashboard.anomalies) for new ones."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dashboard.anomalies import raise_anomaly, resolve
from dashboard.audit import jsonable
from dashboard.correlation.rules import INFO_ONLY
from dashboard.correlation.types import FindingOut, Outcome
from dashboard.models.anomalies import Anomaly
from dashboard.models.correlation import Finding

ANOMALY_PREFIX = "corr."
ACTOR = "correlation"
WITHDRAWN_REASON = ("withdrawn: later data no longer supports this finding / "
                    "後から届いた記録により該当しなくなりました")


@dataclass
class PersistResult:
    new: list[str] = field(default_factory=list)
    kept: int = 0
    withdrawn: list[str] = field(default_factory=list)
    anomalies: list[int] = field(default_factory=list)


def _existing(session: Session, keys: Sequence[str]) -> dict[str, tuple[int, bool]]:
    out: dict[str, tuple[int, bool]] = {}
    for i in range(0, len(keys), 500):
        chunk = list(keys[i : i + 500])
        for fid, k, withdrawn in session.execute(
            select(Finding.id, Finding.dedupe_key, Finding.withdrawn)
            .where(Finding.dedupe_key.in_(chunk))
        ):
            out[k] = (fid, withdrawn)
    return out


def persist(session: Session, outcome: Outcome, now: datetime, *,
            withdraw_keys: Iterable[str] = ()) -> PersistResult:
    """Insert new findings (one anomaly each unless informational), keep known ones, and mark
    ``outcome.cleared`` / ``withdraw_keys`` findings withdrawn (no longer supported by data)."""
    res = PersistResult()
    found: dict[str, FindingOut] = {}
    for f in outcome.found:
        found.setdefault(f.key, f)
    clear = (set(outcome.cleared) | set(withdraw_keys)) - set(found)
    known = _existing(session, sorted(set(found) | clear))
    revive = [known[k][0] for k in found if k in known and known[k][1]]
    if revive:
        session.execute(update(Finding).where(Finding.id.in_(revive))
                        .values(withdrawn=False, withdrawn_at=None))
    for k, f in found.items():
        if k in known:
            res.kept += 1
            continue
        anomaly_id = None
        if f.rule not in INFO_ONLY:
            anomaly, _ = raise_anomaly(
                session, ANOMALY_PREFIX + f.rule, dedupe_key=f.key, now=now,
                subject=f.subject, severity=f.severity, node=f.node,
                detail={"rule": f.rule, "finding": f.key, "ja": f.ja, "en": f.en,
                        "evidence": jsonable(f.evidence)},
            )
            anomaly_id = anomaly.id
            res.anomalies.append(anomaly.id)
        session.add(Finding(
            dedupe_key=f.key, rule=f.rule, severity=f.severity, at=f.at, person_id=f.person_id,
            node=f.node, subject=f.subject[:255], explanation_ja=f.ja, explanation_en=f.en,
            evidence=jsonable(f.evidence), anomaly_id=anomaly_id, found_at=now,
        ))
        res.new.append(k)
    gone = [known[k][0] for k in clear if k in known and not known[k][1]]
    if gone:
        session.execute(update(Finding).where(Finding.id.in_(gone))
                        .values(withdrawn=True, withdrawn_at=now))
        res.withdrawn = sorted(k for k in clear if k in known and not known[k][1])
        for fid, anomaly_id in session.execute(
                select(Finding.id, Finding.anomaly_id).where(Finding.id.in_(gone))):
            anomaly = session.get(Anomaly, anomaly_id) if anomaly_id else None
            if anomaly is not None and anomaly.state != "resolved":
                resolve(session, ACTOR, anomaly.id, WITHDRAWN_REASON, now=now)
    session.flush()
    return res
