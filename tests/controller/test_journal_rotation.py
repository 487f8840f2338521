"""A journal hands over to a rotated key: the old key signs the handover, events before it keep
their signatures, `secroom journal verify` still passes, and a journal never follows a key that
is neither its own nor the one rotated from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.journal import Journal, JournalError, verify_journal
from controller.keys import generate, load_private, open_rotation, previous_path, rotate


def _append(j: Journal, n: int) -> None:
    for _ in range(n):
        j.append("node.started", {"boot": "b", "resumed_after": 0},
                 now=datetime(2026, 12, 1, tzinfo=UTC), clock="synced")


def test_handover_then_verify(tmp_path: Path) -> None:
    key_file, path = tmp_path / "node.key", tmp_path / "journal.sqlite"
    first = generate(key_file)
    j = Journal(path, node="gw1", site="hq", key=first, boot="b")
    _append(j, 3)
    j.close()
    old, new = rotate(key_file)
    assert oct(previous_path(key_file).stat().st_mode & 0o777) == "0o600"
    j = Journal(path, node="gw1", site="hq", key=load_private(key_file), boot="b",
                previous_key=load_private(previous_path(key_file)))
    assert j.rotation is not None
    assert open_rotation(j.rotation, node="gw1", site="hq")[2] == 4
    _append(j, 2)
    j.close()
    report = verify_journal(path, new.public_key())
    assert report.ok and report.count == 5, report.problems
    with pytest.raises(JournalError, match="belongs to"):
        Journal(path, node="gw1", site="hq", key=generate(tmp_path / "other.key"), boot="b")
