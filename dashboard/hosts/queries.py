"""Read-side queries over the host agents' events (host.*): PC sessions, log-ons, operations,
health. For the host pages, the person's timeline (``pc_timeline``) and the monthly report's
system-usage section (``system_usage``).

Everything reads the generic events table (the ingest stores each event as the node signed
it), by kind and time (its index) or by person and time (its index); payloads are validated
with the agent's own models, and one that does not fit is counted in ``invalid``, never
dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.host import events as H
from dashboard.models.events import StoredEvent
from dashboard.models.people import Group

MODELS: dict[str, type[BaseModel]] = {
    H.KIND_LOGON: H.HostLogon, H.KIND_LOGOFF: H.HostLogoff, H.KIND_LOCKED: H.HostLocked,
    H.KIND_UNLOCKED: H.HostUnlocked, H.KIND_SESSION: H.HostSession, H.KIND_SUDO: H.HostSudo,
    H.KIND_AUTH_FAILED: H.HostAuthFailed, H.KIND_FILE_ACCESS: H.HostFileAccess,
    H.KIND_HEALTH: H.HostHealth, H.KIND_OPLOG_GAP: H.HostOplogGap,
}
OPERATION_KINDS = (H.KIND_SUDO, H.KIND_AUTH_FAILED, H.KIND_FILE_ACCESS, H.KIND_OPLOG_GAP)
LOGON_KINDS = (H.KIND_LOGON, H.KIND_LOCKED, H.KIND_UNLOCKED, H.KIND_LOGOFF)
NUMBER_CLASSES = ("number_data", "vault")  # watched folders that hold individual numbers
SESSION_LOOKBACK = timedelta(days=7)  # a session open this long before a period is looked for


@dataclass(frozen=True)
class HostEvent:
    ref: str  # node:seq
    node: str
    ts: datetime
    kind: str
    data: Any  # the validated model


@dataclass
class PcSession:
    host: str
    node: str
    session_id: str
    account: str | None
    person_id: str | None
    opened_at: datetime | None
    closed_at: datetime | None = None
    opened_ref: str = ""

    def open_at(self, when: datetime) -> bool:
        return (self.opened_at is None or self.opened_at <= when) and (
            self.closed_at is None or self.closed_at > when)


@dataclass
class Loaded:
    events: list[HostEvent] = field(default_factory=list)
    invalid: int = 0


def load(db: Session, kinds: Iterable[str], since: datetime, until: datetime, *,
         person_id: str | None = None, host: str | None = None, limit: int | None = None,
         newest_first: bool = False, nodes: set[str] | None = None) -> Loaded:
    """The host events of ``kinds`` in [since, until) (of one person, one host; reported by
    ``nodes``, a site's, None: any node)."""
    e = StoredEvent
    q = select(e.node, e.seq, e.ts, e.kind, e.data).where(
        e.kind.in_(sorted(set(kinds))), e.ts >= since, e.ts < until)
    if nodes is not None:
        q = q.where(e.node.in_(sorted(nodes)))
    if person_id is not None:
        q = q.where(e.person_id == person_id)
    q = q.order_by(e.ts.desc(), e.id.desc()) if newest_first else q.order_by(e.ts, e.id)
    out = Loaded()
    for node, seq, ts, kind, data in db.execute(q):
        try:
            model = MODELS[kind].model_validate(data)
        except ValidationError:
            out.invalid += 1
            continue
        if host is not None and getattr(model, "host", None) != host:
            continue
        out.events.append(HostEvent(f"{node}:{seq}", node, ts, kind, model))
        if limit is not None and len(out.events) >= limit:
            break
    return out


def pc_sessions(db: Session, since: datetime, until: datetime, *, person_id: str | None = None,
                host: str | None = None, nodes: set[str] | None = None) -> list[PcSession]:
    """Sessions (logind's, from the operations log) overlapping [since, until), by opening."""
    loaded = load(db, (H.KIND_SESSION,), since - SESSION_LOOKBACK, until, host=host,
                  nodes=nodes)
    sessions: dict[tuple[str, str], PcSession] = {}
    done: list[PcSession] = []
    for ev in loaded.events:
        d = ev.data
        key = (ev.node, d.session_id)
        if d.action == "opened":
            if key in sessions:  # an opening without its closing: keep what is known
                done.append(sessions.pop(key))
            sessions[key] = PcSession(d.host, ev.node, d.session_id, d.account, d.person_id,
                                      d.at, opened_ref=ev.ref)
        else:
            s = sessions.pop(key, None) or PcSession(d.host, ev.node, d.session_id, d.account,
                                                     d.person_id, None)
            s.closed_at = d.at
            done.append(s)
    done.extend(sessions.values())
    out = [s for s in done if (s.closed_at is None or s.closed_at >= since)
           and (s.opened_at is None or s.opened_at < until)
           and (person_id is None or s.person_id == person_id)]
    return sorted(out, key=lambda s: (s.opened_at or since, s.host, s.session_id))


def pc_timeline(db: Session, person_id: str, since: datetime, until: datetime
                ) -> list[HostEvent]:
    """A person's PC records for the timeline: log-ons (granted or denied), locks, unlocks,
    log-offs, sessions, sudo and file operations, by time. Every kind carries person_id, so
    this is one index range scan."""
    kinds = (*LOGON_KINDS, H.KIND_SESSION, H.KIND_SUDO, H.KIND_FILE_ACCESS, H.KIND_AUTH_FAILED)
    return load(db, kinds, since, until, person_id=person_id).events


def latest_health(db: Session, host: str, until: datetime,
                  nodes: set[str] | None = None) -> HostEvent | None:
    found = load(db, (H.KIND_HEALTH,), until - timedelta(days=31), until, host=host, limit=1,
                 newest_first=True, nodes=nodes).events
    return found[0] if found else None


def known_hosts(db: Session, now: datetime, *, site: str | None = None,
                nodes: set[str] | None = None) -> list[str]:
    """Hosts the groups name, and those whose agents reported in the last 31 days. A host has
    no row of its own: its site is its agent's node's, or the site of the groups naming it
    (``site`` and ``nodes``: one site's groups and nodes; None: every one)."""
    hosts: set[str] = set()
    q = select(Group.hosts) if site is None else select(Group.hosts).where(Group.site == site)
    for listed in db.scalars(q):
        hosts.update(h for h in listed or () if isinstance(h, str))
    for ev in load(db, (H.KIND_HEALTH, H.KIND_LOGON), now - timedelta(days=31), now,
                   nodes=nodes).events:
        hosts.add(ev.data.host)
    return sorted(hosts)


# -- the monthly report's system-usage section ---------------------------------------------


@dataclass
class LogonCount:
    person_id: str | None
    host: str
    granted: int = 0
    denied: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class NumberDataOps:
    person_id: str | None
    account: str | None
    host: str
    path_class: str
    op: str
    count: int = 0
    files: int = 0


@dataclass
class SystemUsage:
    """Log-ins and operations on number data in a period (DOMAIN.md record 5)."""

    logons: list[LogonCount]
    number_data: list[NumberDataOps]
    sessions: int
    sudo: int
    failed_logins: int
    invalid: int


def system_usage(db: Session, since: datetime, until: datetime,
                 classes: Sequence[str] = NUMBER_CLASSES) -> SystemUsage:
    """What the monthly report lists: log-ons per person and host (granted, denied with the
    reasons), the operations on number data per person, host, folder class and operation."""
    loaded = load(db, (H.KIND_LOGON, H.KIND_FILE_ACCESS, H.KIND_SESSION, H.KIND_SUDO,
                       H.KIND_AUTH_FAILED), since, until)
    logons: dict[tuple[str | None, str], LogonCount] = {}
    ops: dict[tuple[Any, ...], NumberDataOps] = {}
    sessions = sudo = failed = 0
    for ev in loaded.events:
        d = ev.data
        if ev.kind == H.KIND_LOGON:
            c = logons.setdefault((d.person_id, d.host), LogonCount(d.person_id, d.host))
            if d.granted:
                c.granted += 1
            else:
                c.denied += 1
                c.reasons[d.reason or "?"] += 1
        elif ev.kind == H.KIND_FILE_ACCESS and d.path_class in classes:
            k = (d.person_id, d.account, d.host, d.path_class, d.op)
            o = ops.setdefault(k, NumberDataOps(*k))
            o.count += 1
            o.files += d.count
        elif ev.kind == H.KIND_SESSION and d.action == "opened":
            sessions += 1
        elif ev.kind == H.KIND_SUDO:
            sudo += d.count
        elif ev.kind == H.KIND_AUTH_FAILED:
            failed += d.count
    key = lambda x: (x.person_id or "~", x.host)  # noqa: E731
    return SystemUsage(sorted(logons.values(), key=key), sorted(ops.values(), key=key),
                       sessions, sudo, failed, loaded.invalid)
