"""The leader: the one replica that runs the policy signer and the scheduled work.

A PostgreSQL session advisory lock, taken with ``pg_try_advisory_lock`` on a connection of its
own (autocommit: no transaction stays open). The lock is freed when that connection ends: a
replica killed or cut off loses it with its connection, and another replica, trying every
``retry_s``, takes it over. While it leads, the holder checks its connection every
``retry_s``; if the connection is gone it stops its leader parts at once (another replica may
hold the lock already). Each term is recorded in ``leader_terms``.

Session locks pin one connection: behind PgBouncer use session pooling for the replicas (a
transaction-pooled connection would lose the lock between statements).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

LOCK_NAME = "secroom:leader"

_TRY = text("SELECT pg_try_advisory_lock(hashtext(:name)::bigint)")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtext(:name)::bigint)")
_TERM = text("INSERT INTO leader_terms (holder, started_at) VALUES (:me, clock_timestamp()) "
             "RETURNING id")
_END = text("UPDATE leader_terms SET ended_at = clock_timestamp() WHERE id = :id")


class Leader:
    """Starts the parts ``make_parts`` builds (fresh for each term) while this replica holds
    the lock, and stops them when it stops holding it."""

    def __init__(self, engine: Engine, make_parts: Callable[[], Sequence[Any]], *, replica: str,
                 site: str, retry_s: float = 1.0) -> None:
        self.engine = engine
        self.make_parts = make_parts
        self.parts: list[Any] = []
        self.replica = replica
        self.lock_name = f"{LOCK_NAME}:{site}"
        self.retry_s = retry_s
        self.leading = threading.Event()
        self.terms = 0
        self.last_error: str | None = None
        self._conn: Connection | None = None
        self._term_id: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._step()
        self._thread = threading.Thread(target=self._run, name="leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        if self.leading.is_set():
            self._resign(clean=True)

    def _run(self) -> None:
        while not self._stop.wait(self.retry_s):
            self._step()

    def _step(self) -> None:
        try:
            if self.leading.is_set():
                assert self._conn is not None
                self._conn.execute(text("SELECT 1"))  # still ours while the session lives
            else:
                self._try()
        except (OperationalError, DBAPIError) as exc:
            self.last_error = f"leader lock connection: {exc.orig or exc}"
            if self.leading.is_set():
                self._resign(clean=False)
            self._close()

    def _try(self) -> None:
        if self._conn is None:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if not self._conn.scalar(_TRY, {"name": self.lock_name}):
            return
        self._term_id = self._conn.scalar(_TERM, {"me": self.replica})
        self.terms += 1
        self.leading.set()
        self.parts = list(self.make_parts())
        for part in self.parts:
            part.start()

    def _resign(self, *, clean: bool) -> None:
        self.leading.clear()
        for part in reversed(self.parts):
            try:
                part.stop()
            except Exception as exc:  # noqa: BLE001 - the others must stop too
                self.last_error = f"stopping {type(part).__name__}: {exc}"
        if clean and self._conn is not None:
            try:
                if self._term_id is not None:
                    self._conn.execute(_END, {"id": self._term_id})
                self._conn.execute(_UNLOCK, {"name": self.lock_name})
            except (OperationalError, DBAPIError) as exc:
                self.last_error = f"leader lock not released: {exc.orig or exc}"
        self._term_id = None
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # the connection is gone either way
                self._conn.invalidate()  # never back into the pool with the lock held
                self._conn.close()
            self._conn = None

    def stats(self) -> dict[str, Any]:
        return {"leading": self.leading.is_set(), "terms": self.terms,
                "last_error": self.last_error}
