"""The room PCs' rules with their inputs read from the database: per stored host event (the
incremental path), for the exits of a period (the periodic check: a session left open), and
over a period (the re-run). The same functions feed both paths, so the keys agree."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.correlation import host_rules as HR
from dashboard.correlation import sources as S
from dashboard.correlation.rules import key
from dashboard.correlation.settings import CorrelationSettings
from dashboard.correlation.types import AccessIn, Outcome
from dashboard.hosts import queries as Q
from dashboard.models.events import DoorAccess

FAILURE_KINDS = ("host.logon", "host.auth_failed")
FILE_KIND = "host.file_access"


def host_event(node: str, seq: int, ts: datetime, kind: str, data: dict[str, Any]
               ) -> Q.HostEvent | None:
    model = Q.MODELS.get(kind)
    if model is None:
        return None
    try:
        return Q.HostEvent(f"{node}:{seq}", node, ts, kind, model.model_validate(data))
    except ValidationError:
        return None


def event_outcome(session: Session, e: Q.HostEvent, s: CorrelationSettings) -> Outcome:
    """Every host rule that looks at one event, with the rule keys that are clear."""
    out = Outcome()
    d = e.data
    if e.kind == "host.logon":
        g = timedelta(seconds=s.grace_s)
        ivs = S.presence_of(session, d.person_id, e.ts - g, e.ts + g) if d.person_id else []
        out.add(key(HR.PC_NOT_IN_ROOM, e.ref), HR.logon_not_in_room(e, ivs, s))
        out.add(key(HR.PC_OUTSIDE_HOURS, e.ref), HR.logon_outside_hours(e, s))
        out.add(key(HR.PC_PRESENCE_UNKNOWN, e.ref), HR.presence_unknown(e, s))
        out.add(key(HR.PC_BREAK_GLASS, e.ref), HR.break_glass(e, s))
    if e.kind in FAILURE_KINDS:
        out.add(key(HR.PC_FAILED_LOGINS, e.ref), HR.failed_logins(e, _failures_before(
            session, e, s), s))
    elif e.kind == "host.sudo":
        out.add(key(HR.PC_SUDO_NOT_ADMIN, e.ref), HR.sudo_without_admin(e, s))
    elif e.kind == FILE_KIND:
        w = timedelta(seconds=s.usb_window_s)
        acc = (S.accesses_between(session, d.at - w, (d.last_at or d.at) + w,
                                  person_id=d.person_id) if d.person_id else [])
        out.add(key(HR.PC_FILES_WITHOUT_ACCESS, e.ref), HR.files_without_access(e, acc, s))
    elif e.kind == "host.session":
        sessions = Q.pc_sessions(session, d.at, d.at + timedelta(microseconds=1))
        out.add(key(HR.PC_TWO_HOSTS, e.ref), HR.two_hosts(e, sessions, s))
    return out


def _failures_before(session: Session, e: Q.HostEvent, s: CorrelationSettings
                     ) -> list[Q.HostEvent]:
    lo = e.ts - timedelta(seconds=s.failed_login_window_s)
    return [x for x in Q.load(session, FAILURE_KINDS, lo, e.ts + timedelta(microseconds=1),
                              host=e.data.host).events
            if x.data.account == e.data.account and x.ref != e.ref]


def exits_outcome(session: Session, since: datetime, until: datetime, now: datetime,
                  s: CorrelationSettings) -> Outcome:
    """Sessions left open: each granted exit in [since, until) whose grace has passed."""
    out = Outcome()
    g = timedelta(seconds=s.grace_s)
    end = min(until, now - g)
    if end <= since:
        return out
    q = select(DoorAccess.node, DoorAccess.seq, DoorAccess.ts, DoorAccess.person_id,
               DoorAccess.second_person_id, DoorAccess.door).where(
        DoorAccess.direction == "out", DoorAccess.granted.is_(True), DoorAccess.ts >= since,
        DoorAccess.ts < end).order_by(DoorAccess.ts)
    if s.room_doors:
        q = q.where(DoorAccess.door.in_(list(s.room_doors)))
    exits = [(f"{n}:{sq}", p, ts) for n, sq, ts, p1, p2, _door in session.execute(q)
             for p in (p1, p2) if p]
    if not exits:
        return out
    sessions = Q.pc_sessions(session, since, end + g)
    locks = Q.load(session, ("host.locked", "host.logoff"), since, end + g).events
    for ref, person, ts in exits:
        # a two-person exit moves both: one key per person
        out.add(key(HR.PC_AFTER_EXIT, ref, person),
                HR.session_after_exit(ref, person, ts, sessions, locks, s))
    return out


def period_outcome(session: Session, since: datetime, until: datetime,
                   s: CorrelationSettings) -> Outcome:
    """Every host rule over the host events of [since, until) (the re-run)."""
    out = Outcome()
    for e in Q.load(session, tuple(Q.MODELS), since, until).events:
        out.extend(event_outcome(session, e, s))
    return out


def after_new_accesses(session: Session, rows: Iterable[AccessIn], s: CorrelationSettings
                       ) -> Outcome:
    """Number-system rows imported after the file accesses they explain: judge those again."""
    out = Outcome()
    w = timedelta(seconds=s.usb_window_s)
    seen: set[str] = set()
    for a in rows:
        if a.person_id is None or a.category == "login" or not a.ok:
            continue
        # journaled within a burst's lifetime after the file access itself
        margin = timedelta(hours=1)
        for e in Q.load(session, (FILE_KIND,), a.ts - w - margin, a.ts + w + margin,
                        person_id=a.person_id).events:
            if e.ref not in seen:
                seen.add(e.ref)
                out.extend(event_outcome(session, e, s))
    return out
