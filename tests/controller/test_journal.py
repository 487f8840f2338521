from __future__ import annotations

import math
import re
import sqlite3
import threading
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.envelope import GENESIS, parse, seal, verify_chain
from controller.journal import (
    BatchSealer,
    EventRejected,
    Journal,
    JournalError,
    JournalFull,
    verify_journal,
)
from controller.numguard import REDACTED, redact_data

NOW = datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def open_journal(path: Path, key: Ed25519PrivateKey, **kw: str) -> Journal:
    args = {"node": "gw1", "site": "site1", "boot": "boot1", **kw}
    return Journal(path, key=key, **args)


def fill(j: Journal, n: int, kind: str = "door.rex") -> None:
    j.append_many([(kind, {"i": i}) for i in range(n)], now=NOW, clock="synced")


def test_seq_chain_and_signatures(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    j = open_journal(tmp_path / "j.db", key)
    assert j.head() == (0, GENESIS)
    first = j.append("node.started", {"boot": "boot1"}, now=NOW, clock="unsynced")
    more = j.append_many([("door.rex", {"i": i}) for i in range(5)], now=NOW, clock="synced")
    assert [e.seq for e in [first, *more]] == [1, 2, 3, 4, 5, 6]
    assert first.prev == GENESIS and more[0].prev == first.hash
    assert j.head() == (6, more[-1].hash)
    stored = j.events(1)
    assert stored == [first, *more]
    verify_chain(stored, key.public_key())
    raw = j.raw(3, 3)
    assert raw[0][:2] == (3, "door.rex") and parse(raw[0][2]) == more[1]


def test_wal_and_full_sync(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    j = open_journal(tmp_path / "j.db", key)
    fill(j, 1)
    db = sqlite3.connect(tmp_path / "j.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    db.close()


def test_reopen_continues_the_chain(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    j = open_journal(tmp_path / "j.db", key)
    fill(j, 3)
    head = j.head()
    j.close()
    j2 = open_journal(tmp_path / "j.db", key, boot="boot2")
    assert j2.head() == head
    e = j2.append("node.started", {}, now=NOW, clock="unsynced")
    assert (e.seq, e.prev, e.boot) == (4, head[1], "boot2")
    assert verify_journal(tmp_path / "j.db", key.public_key()).ok


def test_journal_refuses_another_node_or_key(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    open_journal(tmp_path / "j.db", key).close()
    with pytest.raises(JournalError, match="node 'gw1'"):
        open_journal(tmp_path / "j.db", key, node="gw2")
    with pytest.raises(JournalError, match="public_key"):
        open_journal(tmp_path / "j.db", Ed25519PrivateKey.generate())


@pytest.mark.parametrize(
    ("kind", "data", "why"),
    [
        ("Door.Access", {}, "not of the form"),
        ("door", {}, "not of the form"),
        ("door.rex", {"when": NOW}, "not plain JSON"),
        ("door.rex", {"x": math.nan}, "not plain JSON"),
        ("door.rex", {"x": "\ud800"}, "not plain JSON"),
        ("door.rex", {1: "int key", "a": 2}, "not plain JSON"),
        ("door.rex", {"when": {NOW: 1}}, "not plain JSON"),
        ("door.rex", {"blob": "x" * 70_000}, "limit"),
    ],
)
def test_bad_items_store_nothing(
    tmp_path: Path, key: Ed25519PrivateKey, kind: str, data: dict[str, object], why: str
) -> None:
    j = open_journal(tmp_path / "j.db", key)
    fill(j, 2)
    head = j.head()
    with pytest.raises(EventRejected, match=why):
        j.append_many([("door.rex", {"ok": 1}), (kind, data)], now=NOW, clock="synced")
    assert j.head() == head
    assert [e.seq for e in j.events(1)] == [1, 2]
    assert j.append("door.rex", {}, now=NOW, clock="synced").seq == 3


def test_disk_full_loses_nothing_and_continues(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    j = open_journal(tmp_path / "j.db", key)
    fill(j, 10)
    before = j.events(1)
    pages = j._db.execute("PRAGMA page_count").fetchone()[0]
    j._db.execute(f"PRAGMA max_page_count={pages}")  # the "disk" is now exactly full
    big = [("door.rex", {"pad": "x" * 3000}) for _ in range(50)]
    with pytest.raises(JournalFull, match="no space left"):
        j.append_many(big, now=NOW, clock="synced")
    assert j.head() == (10, before[-1].hash)
    assert j.events(1) == before
    j._db.execute("PRAGMA max_page_count=1073741823")  # space freed
    e = j.append("door.rex", {}, now=NOW, clock="synced")
    assert (e.seq, e.prev) == (11, before[-1].hash)
    assert verify_journal(tmp_path / "j.db", key.public_key()).ok


def test_ack_is_monotonic_bounded_and_persisted(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    j = open_journal(tmp_path / "j.db", key)
    fill(j, 5)
    assert j.ack == 0
    j.set_ack(3)
    j.set_ack(2)  # an older retained ack arriving late is ignored
    assert j.ack == 3
    with pytest.raises(JournalError, match="above the journal head"):
        j.set_ack(6)
    j.set_delivered(4)
    j.close()
    j2 = open_journal(tmp_path / "j.db", key)
    assert (j2.ack, j2.delivered) == (3, 4)


def test_prune_keeps_head_and_verify_still_passes(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = tmp_path / "j.db"
    j = open_journal(path, key)
    fill(j, 10)
    assert j.prune(below=4) == 3
    assert j.first() == 4
    assert j.prune(below=100) == 6  # capped: the head row (10) stays
    assert [e.seq for e in j.events(1)] == [10]
    report = verify_journal(path, key.public_key())
    assert (report.ok, report.first, report.last, report.count) == (True, 10, 10, 1)
    j.close()
    j2 = open_journal(path, key)
    assert j2.append("door.rex", {}, now=NOW, clock="synced").seq == 11
    assert verify_journal(path, key.public_key()).ok


def tamper(path: Path, sql: str, *args: object) -> None:
    db = sqlite3.connect(path)
    db.execute(sql, args)
    db.commit()
    db.close()


@pytest.fixture
def filled(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    path = tmp_path / "j.db"
    j = open_journal(path, key)
    fill(j, 20)
    j.set_ack(20)
    j.close()
    assert verify_journal(path, key.public_key()).ok
    return path


def test_verify_detects_an_edit(filled: Path, key: Ed25519PrivateKey) -> None:
    db = sqlite3.connect(filled)
    body = db.execute("SELECT body FROM events WHERE seq = 7").fetchone()[0]
    db.close()
    tamper(filled, "UPDATE events SET body = ? WHERE seq = 7", body.replace(b'"i":6', b'"i":9'))
    report = verify_journal(filled, key.public_key())
    assert not report.ok
    assert any("row 7" in p and "hash" in p for p in report.problems)


def test_verify_detects_a_deletion_in_the_middle(filled: Path, key: Ed25519PrivateKey) -> None:
    tamper(filled, "DELETE FROM events WHERE seq BETWEEN 8 AND 9")
    report = verify_journal(filled, key.public_key())
    assert not report.ok and report.count == 18
    assert "events 8..9 are missing" in report.problems


def test_verify_detects_deletions_at_both_ends(filled: Path, key: Ed25519PrivateKey) -> None:
    tamper(filled, "DELETE FROM events WHERE seq < 3 OR seq > 18")
    problems = verify_journal(filled, key.public_key()).problems
    assert "events 1..2 are missing" in problems
    assert any("after 18 are missing" in p for p in problems)


def test_verify_detects_reordering(filled: Path, key: Ed25519PrivateKey) -> None:
    db = sqlite3.connect(filled)
    a, b = (db.execute("SELECT body FROM events WHERE seq = ?", (s,)).fetchone()[0] for s in (5, 6))
    db.execute("UPDATE events SET body = ? WHERE seq = 5", (b,))
    db.execute("UPDATE events SET body = ? WHERE seq = 6", (a,))
    db.commit()
    db.close()
    problems = verify_journal(filled, key.public_key()).problems
    assert any("rows reordered" in p for p in problems)


def test_verify_detects_a_foreign_signature(filled: Path) -> None:
    report = verify_journal(filled, Ed25519PrivateKey.generate().public_key())
    assert not report.ok
    assert sum("bad signature" in p for p in report.problems) == 20


def test_verify_a_missing_file(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    report = verify_journal(tmp_path / "nope.db", key.public_key())
    assert not report.ok and "no journal" in report.problems[0]


def test_a_failed_commit_fails_the_batch_sealed_on_top_and_the_chain_restarts(
    tmp_path: Path, key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = open_journal(tmp_path / "j.db", key)
    fill(j, 3)
    head = j.head()
    release, second_sealed = threading.Event(), threading.Event()
    real_write, real_seal = j._write, j._seal
    seals = []

    def failing_write(*args: object) -> None:
        release.wait(10)
        raise JournalFull("journal full (simulated)")

    def seal_spy(*args: Any) -> Any:
        out = real_seal(*args)
        seals.append(out[0][0].seq)
        if len(seals) == 2:
            second_sealed.set()
        return out

    monkeypatch.setattr(j, "_write", failing_write)
    monkeypatch.setattr(j, "_seal", seal_spy)
    errors: list[Exception] = []

    def append() -> None:
        try:
            fill(j, 2)
        except JournalError as exc:
            errors.append(exc)

    first = threading.Thread(target=append)
    first.start()
    second = threading.Thread(target=append)
    second.start()
    assert second_sealed.wait(10)  # sealed as seqs 6..7, on top of the pending 4..5
    monkeypatch.setattr(j, "_write", real_write)
    release.set()
    first.join()
    second.join()
    assert seals == [4, 6]
    assert len(errors) == 2 and all(isinstance(e, JournalFull) for e in errors)
    assert j.head() == head
    e = j.append("door.rex", {}, now=NOW, clock="synced")
    assert (e.seq, e.prev) == (4, head[1])
    assert verify_journal(tmp_path / "j.db", key.public_key()).ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(data=st.dictionaries(st.text(), json_values, max_size=5), seq=st.integers(1, 10**12))
def test_batch_sealer_matches_envelope_seal(data: dict[str, Any], seq: int) -> None:
    key = Ed25519PrivateKey.generate()
    sealer = BatchSealer(key, node="gw-1.a", site="site_1", boot="b00t")
    prev = "ab" * 32
    events, rows = sealer.seal([("door.access", data)], (seq - 1, prev), NOW, "unsynced")
    ref = seal(key, node="gw-1.a", site="site_1", seq=seq, ts=NOW, boot="b00t",
               clock="unsynced", kind="door.access", data=redact_data(data)[0], prev=prev)
    assert events[0] == ref
    assert rows[0] == (seq, ref.ts, "door.access", ref.hash, ref.to_bytes())
    assert parse(rows[0][4]) == ref


def test_no_individual_number_reaches_the_journal_in_any_form(
        tmp_path: Path, key: Ed25519PrivateKey) -> None:
    """Whatever feature emits it (a backup path, a print title, a USB label), the number is
    replaced before the event is sealed: not in the file, not in what is published."""
    number = "402123456786"
    path = "/vault/社員/40212345678⑥/源泉徴収票.pdf"  # ⑥: NFKC makes it 402123456786
    items = [
        ("backup.failed", {"error": f"cannot read {path}", "paths": [path]}),
        ("print.release", {"jobs": [{"title": "源泉徴収票 4021\ufe632345\ufe636786",
                                     "pages": 3}]}),
        ("usb.inserted", {"label": "4021\u20022345\u20026786", "size": 123456789018}),
        ("door.rex", {"note": "4021 2345 6787"}),  # a near-miss (check digit): kept as typed
    ]
    j = open_journal(tmp_path / "j.db", key)
    events = j.append_many(items, now=NOW, clock="synced")
    j.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("j.db*"))
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", blob.decode("utf-8", "replace")))
    assert number not in digits
    assert events[0].data == {"error": f"cannot read /vault/社員/{REDACTED}/源泉徴収票.pdf",
                              "paths": [f"/vault/社員/{REDACTED}/源泉徴収票.pdf"]}
    assert events[1].data["jobs"][0]["title"] == f"源泉徴収票 {REDACTED}"
    assert events[2].data == {"label": REDACTED, "size": 123456789018}  # a byte count, kept
    assert events[3].data == {"note": "4021 2345 6787"}
    again = open_journal(tmp_path / "j.db", key)
    assert again.events(1) == events and verify_journal(tmp_path / "j.db", key.public_key()).ok
    assert (j.numbers_removed, again.numbers_removed) == (4, 0)
