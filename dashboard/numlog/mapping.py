"""Operator -> person and terminal -> host mappings (audited)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.numguard import contains_my_number
from dashboard.audit import append_audit
from dashboard.models.numlog import OperatorMap, TerminalMap
from dashboard.models.people import Person


def _check(*values: str | None) -> None:
    for v in values:
        if v is not None and (not v.strip() or len(v) > 128 or contains_my_number(v)):
            raise ValueError("names must be 1-128 characters and hold no individual number")


def set_operator(session: Session, operator: str, person_id: str, *, source: str = "",
                 host: str | None = None, actor: str, now: datetime) -> OperatorMap:
    _check(operator, person_id, host)
    if session.get(Person, person_id) is None:
        raise ValueError(f"no person {person_id!r}")
    row = session.scalars(select(OperatorMap).where(
        OperatorMap.source == source, OperatorMap.operator == operator)).first()
    before = None if row is None else {"person_id": row.person_id, "host": row.host}
    if row is None:
        row = OperatorMap(source=source, operator=operator, person_id=person_id, host=host)
        session.add(row)
    else:
        row.person_id, row.host = person_id, host
    append_audit(session, actor=actor, action="numlog.map_operator", target_type="operator",
                 target_id=f"{source}:{operator}", before=before,
                 after={"person_id": person_id, "host": host}, now=now)
    session.flush()
    return row


def set_terminal(session: Session, terminal: str, host: str, *, actor: str, now: datetime
                 ) -> TerminalMap:
    _check(terminal, host)
    row = session.get(TerminalMap, terminal)
    before = None if row is None else {"host": row.host}
    if row is None:
        row = TerminalMap(terminal=terminal, host=host)
        session.add(row)
    else:
        row.host = host
    append_audit(session, actor=actor, action="numlog.map_terminal", target_type="terminal",
                 target_id=terminal, before=before, after={"host": host}, now=now)
    session.flush()
    return row
