from __future__ import annotations

import os
import threading
import time

from sqlalchemy import text

from dashboard.db import WalCheckpointer, make_engine
from dashboard.runtime import LoopPart


def test_the_checkpointer_copies_the_wal_into_the_database_beside_the_writer(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, blob TEXT)"))
    db_file = tmp_path / "db.sqlite3"
    size_before = db_file.stat().st_size
    with engine.begin() as conn:  # about 2 MB, well under the writer's own autocheckpoint
        conn.execute(text("INSERT INTO t (blob) VALUES (:b)"), [{"b": "x" * 1000}] * 2000)
    assert db_file.stat().st_size == size_before  # still only in the WAL
    cp = WalCheckpointer(engine, interval_s=0.05)
    part = LoopPart("wal-checkpoint", cp.run)
    part.start()
    try:
        deadline = time.monotonic() + 30
        while cp.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # a counter of the thread's rounds: polled, nothing to await
    finally:
        part.stop()
    assert cp.checkpoints > 0 and cp.errors == 0
    assert db_file.stat().st_size > size_before + 1_000_000  # the rows reached the file
    assert os.path.exists(f"{db_file}-wal")
    engine.dispose()


def test_the_checkpointer_does_nothing_for_other_databases() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    cp = WalCheckpointer(engine, interval_s=0.01)
    stop = threading.Event()
    loop = threading.Thread(target=cp.run, args=(stop,), daemon=True)
    loop.start()
    loop.join(10)
    alive = loop.is_alive()
    stop.set()
    assert not alive  # returned at once: no loop for PostgreSQL
    assert cp.checkpoints == 0 and cp.errors == 0
