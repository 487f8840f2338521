"""Records and keys are private files: the node key is written only into a file its own call
created, and the SQLite stores (node journal, dashboard database, with their -wal and -shm
files) are 0600 whatever the umask."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.journal import Journal
from controller.keys import generate


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> object:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_key_is_never_written_through_a_planted_temp_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not a key\n")
    key_file = tmp_path / "node.key"
    (tmp_path / "node.key.tmp").symlink_to(elsewhere)
    generate(key_file)
    assert elsewhere.read_text() == "not a key\n"  # before: the PEM went into the link's target
    assert "PRIVATE KEY" in key_file.read_text() and _mode(key_file) == 0o600


def test_the_journal_and_its_wal_are_private(tmp_path: Path, open_umask: object) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, node="gw1", site="s", key=Ed25519PrivateKey.generate(), boot="b")
    try:
        journal.append_many([("node.test", {"n": 1})], now=datetime.now(UTC), clock="synced")
        files = [p for p in tmp_path.iterdir() if p.name.startswith("journal.sqlite")]
        assert {p.name for p in files} >= {"journal.sqlite", "journal.sqlite-wal"}
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        journal.close()


def test_an_existing_wide_database_file_is_narrowed(tmp_path: Path, open_umask: object) -> None:
    from dashboard.db import make_engine

    path = tmp_path / "dashboard.sqlite"
    path.touch(mode=0o644)
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.commit()
    engine.dispose()
    assert _mode(path) == 0o600
