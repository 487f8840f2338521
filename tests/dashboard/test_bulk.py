"""Bulk inserts (dashboard.bulk): rows read back exactly as the ORM would have stored them, on
SQLite (executemany of converted tuples) and PostgreSQL (COPY), all at once or one by one."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.bulk import insert_rows, row_writer
from dashboard.models.events import StoredEvent

TRICKY = [
    "plain",
    "back\\slash",
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "\\N",  # COPY's NULL marker, as text
    "\\.",  # COPY's old end-of-data marker
    "日本語の扉",
    "",
]


def _row(i: int, text: str) -> dict[str, object]:
    return {
        "node": f"n-{text}"[:64],
        "seq": 2**62 - i,
        "kind": "door.access",
        "ts": datetime(2026, 11, 1, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=9)))
        + timedelta(seconds=i),
        "received_at": datetime(2026, 11, 1, 0, 0, tzinfo=UTC),
        "boot": text,
        "clock": "synced",
        "person_id": None if i % 2 else text,
        "door": text or None,
        "data": {"text": text, "nested": {"q": 'say "hi"', "list": [1, 2.5, None, True]}},
        "prev": "0" * 64,
        "hash": f"{i:064x}",
        "sig": "s" * 86,
        "chain_ok": bool(i % 3),
    }


def _read(session: Session) -> list[dict[str, object]]:
    out = []
    for ev in session.scalars(select(StoredEvent).order_by(StoredEvent.id)):
        out.append({c: getattr(ev, c) for c in _row(0, "")})
    return out


def test_rows_read_back_as_given(session: Session) -> None:
    rows = [_row(i, text) for i, text in enumerate(TRICKY)]
    insert_rows(session, StoredEvent.__table__, rows)  # type: ignore[arg-type]
    session.commit()
    got = _read(session)
    assert got == [{**r, "ts": r["ts"].astimezone(UTC)} for r in rows]  # type: ignore[union-attr]
    assert got[2]["data"] == {"text": "tab\there", "nested": rows[2]["data"]["nested"]}  # type: ignore[index]


def test_naive_datetimes_are_refused(session: Session) -> None:
    row = {**_row(1, "x"), "ts": datetime(2026, 11, 1, 9, 0)}
    with pytest.raises(ValueError, match="naive datetime"):
        insert_rows(session, StoredEvent.__table__, [row])  # type: ignore[arg-type]


def test_a_duplicate_key_raises_the_drivers_integrity_error(session: Session) -> None:
    insert_rows(session, StoredEvent.__table__, [_row(1, "a")])  # type: ignore[arg-type]
    session.commit()
    with pytest.raises(Exception) as caught:  # noqa: PT011 - each driver has its own class
        insert_rows(session, StoredEvent.__table__, [_row(1, "a")])  # type: ignore[arg-type]
    assert isinstance(caught.value, sqlite3.IntegrityError | psycopg.errors.IntegrityError)
    session.rollback()
    assert len(_read(session)) == 1


def test_an_unknown_column_is_refused(session: Session) -> None:
    with pytest.raises(KeyError, match="no column"):
        insert_rows(session, StoredEvent.__table__, [{**_row(1, "x"), "nope": 1}])  # type: ignore[arg-type]


def test_rows_written_one_by_one_are_all_or_nothing(session: Session) -> None:
    """row_writer (the ingest's events stream into a COPY on PostgreSQL while the batch is
    checked): the rows written are stored; a failure inside the block stores none of them."""
    with row_writer(session, StoredEvent.__table__) as write:  # type: ignore[arg-type]
        for i, text in enumerate(TRICKY[:4]):
            write(_row(i, text))
    session.commit()
    assert [r["boot"] for r in _read(session)] == TRICKY[:4]
    table = StoredEvent.__table__
    with (
        pytest.raises(RuntimeError, match="checking failed"),  # noqa: PT012
        row_writer(session, table) as write,  # type: ignore[arg-type]
    ):
        write(_row(10, "streamed"))
        raise RuntimeError("checking failed")
    session.commit()  # whatever reached the database would now be kept (PostgreSQL: the
    # failed COPY aborted the transaction, and a COMMIT then rolls back)
    assert [r["boot"] for r in _read(session)] == TRICKY[:4]
