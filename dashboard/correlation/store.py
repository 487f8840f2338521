"""Store findings idempotently and raise an anomaly (through dashboard.anomalies) for new ones."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
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


_F = Finding.__table__
_A = Anomaly.__table__
_EXISTING = select(_F.c.id, _F.c.dedupe_key, _F.c.withdrawn).where(
    _F.c.dedupe_key.in_(bindparam("keys", expanding=True)))
_OPEN = select(_A.c.dedupe_key).where(_A.c.dedupe_key.in_(bindparam("keys", expanding=True)),
                                      _A.c.state == "open")
_INSERT_ANOMALY = insert(_A).returning(_A.c.id, _A.c.dedupe_key)


def _existing(session: Session, keys: Sequence[str]) -> dict[str, tuple[int, bool]]:
    out: dict[str, tuple[int, bool]] = {}
    for i in range(0, len(keys), 500):
        for fid, k, withdrawn in session.execute(_EXISTING, {"keys": list(keys[i : i + 500])}):
            out[k] = (fid, withdrawn)
    return out


def _detail(f: FindingOut) -> dict[str, object]:
    return {"rule": f.rule, "finding": f.key, "ja": f.ja, "en": f.en,
            "evidence": jsonable(f.evidence)}


def _where(f: FindingOut) -> dict[str, object]:
    """When, whom and where a finding concerns: what the review queue filters on."""
    door, host = f.evidence.get("door"), f.evidence.get("host")
    return {"at": f.at, "person_id": f.person_id,
            "place": door if isinstance(door, str) else None,
            "host": host if isinstance(host, str) else None}


def _raise(session: Session, new: Sequence[FindingOut], now: datetime) -> dict[str, int]:
    """One anomaly per new finding, as ``dashboard.anomalies.raise_anomaly`` makes it, set-based
    (one query for open anomalies with the keys, one insert for the rest; the per-event path
    pays two statements, not an ORM flush): an open anomaly with the key is bumped through
    ``raise_anomaly``."""
    out: dict[str, int] = {}
    if not new:
        return out
    keys = {f"{ANOMALY_PREFIX}{f.rule}:{f.key}"[:255]: f for f in new}
    open_: set[str] = set()
    names = sorted(keys)
    for i in range(0, len(names), 500):
        open_.update(session.scalars(_OPEN, {"keys": names[i : i + 500]}))
    for k in sorted(open_):
        f = keys.pop(k)
        anomaly, _ = raise_anomaly(session, ANOMALY_PREFIX + f.rule, dedupe_key=f.key, now=now,
                                   subject=f.subject, severity=f.severity, node=f.node,
                                   detail=_detail(f), **_where(f))
        out[f.key] = anomaly.id
    rows = [{"kind": ANOMALY_PREFIX + f.rule, "severity": f.severity, "node": f.node,
             "subject": f.subject[:255], "detail": _detail(f), "dedupe_key": k, "count": 1,
             "state": "open", "first_seen_at": now, "last_seen_at": now, **_where(f)}
            for k, f in keys.items()]
    for i in range(0, len(rows), 1000):
        part = rows[i : i + 1000]
        res = (session.execute(_INSERT_ANOMALY, part[0]).all() if len(part) == 1 else
               session.execute(_INSERT_ANOMALY, part).all())
        for aid, k in res:
            out[keys[k].key] = aid
    return out


SUPERSEDED_REASON = ("superseded by review item {id}, which carries the evidence / "
                     "証拠付きの確認事項 {id} に引き継ぎました")
_DOOR_RULES = ("door_forced", "door_held_open")


def _supersede(session: Session, found: Sequence[FindingOut], ids: dict[str, int],
               now: datetime) -> None:
    """The ingest raises a bare door alarm the moment a door is forced or held open; the
    finding about the same door opens the review item with its evidence. One incident is one
    item: the bare alarm is resolved (audited) and points to the finding's item."""
    for f in found:
        door = f.evidence.get("door")
        if f.rule not in _DOOR_RULES or not isinstance(door, str) or not f.node:
            continue
        key = f"{f.rule}:{f.node}:{door}"[:255]
        for bare in session.scalars(select(Anomaly).where(Anomaly.dedupe_key == key,
                                                          Anomaly.state != "resolved")):
            resolve(session, ACTOR, bare.id, SUPERSEDED_REASON.format(id=ids[f.key]), now=now)


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
    new = [f for k, f in found.items() if k not in known]
    res.kept = len(found) - len(new)
    ids = _raise(session, [f for f in new if f.rule not in INFO_ONLY], now)
    rows = [{"dedupe_key": f.key, "rule": f.rule, "severity": f.severity, "at": f.at,
             "person_id": f.person_id, "node": f.node, "subject": f.subject[:255],
             "explanation_ja": f.ja, "explanation_en": f.en, "evidence": jsonable(f.evidence),
             "anomaly_id": ids.get(f.key), "found_at": now, "withdrawn": False}
            for f in new]
    for i in range(0, len(rows), 2000):
        session.execute(insert(_F), rows[i : i + 2000])
    _supersede(session, [f for f in new if f.key in ids], ids, now)
    res.new = [f.key for f in new]
    res.anomalies = sorted(ids.values())
    gone = [known[k][0] for k in clear if k in known and not known[k][1]]
    if gone:
        session.execute(update(Finding).where(Finding.id.in_(gone))
                        .values(withdrawn=True, withdrawn_at=now))
        res.withdrawn = sorted(k for k in clear if k in known and not known[k][1])
        for _fid, anomaly_id in session.execute(
                select(Finding.id, Finding.anomaly_id).where(Finding.id.in_(gone))):
            anomaly = session.get(Anomaly, anomaly_id) if anomaly_id else None
            if anomaly is not None and anomaly.state != "resolved":
                resolve(session, ACTOR, anomaly.id, WITHDRAWN_REASON, now=now)
    session.flush()
    return res
