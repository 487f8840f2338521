"""The node journal: every event, signed and hash-chained, stored durably before it is published.

One SQLite file in WAL mode with ``synchronous=FULL``: a commit is on disk when ``append`` or
``append_many`` returns. ``append_many`` seals all its events and commits them in one
transaction (group commit: one fsync for the batch, which is how the runtime reaches thousands of
events per second while every ``emit`` still returns only after its own event is durable).
Sealing (hash, Ed25519 signature) of one batch overlaps the commit of the previous one, and
``BatchSealer`` builds exactly ``envelope.seal``'s bytes at a lower cost per event. Every string
(and key) of an event's data passes ``controller.numguard`` before sealing: no individual number
is stored or published, whoever emitted it (``numbers_removed`` counts them).

Tables: ``events(seq, ts, kind, hash, body)`` where ``body`` is the exact wire bytes
(``Event.to_bytes()``), and ``meta(name, value)`` holding the node, site and public key the
journal belongs to, the dashboard ``ack`` mark, the publisher's ``delivered`` mark (highest seq
the broker PUBACKed contiguously) and the prune anchor (``pruned_below`` and the hash of the last
pruned event) so that ``verify_journal`` can still check the first row left after a prune.

``seq`` is contiguous from 1 and never reused: ``prune`` never deletes the head row, so a restart
continues the chain from it. A failed commit (disk full, I/O error) is rolled back and leaves both
the file and the in-memory head untouched, so nothing half-written is ever seen and nothing
already stored is lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from controller.envelope import (
    GENESIS,
    MAX_EVENT_BYTES,
    SCHEMA_VERSION,
    ClockState,
    EnvelopeError,
    Event,
    b64u,
    format_ts,
    parse,
    seal,
)
from controller.files import create_private
from controller.journal_verify import VerifyReport as VerifyReport  # re-exported: the offline
from controller.journal_verify import verify_journal as verify_journal  # check lives there
from controller.keys import public_b64, rotation_statement
from controller.numguard import json_may_hold_number, redact_data
from controller.receipts import ReceiptRefused

KIND_RE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")
# SQLite's page cache per connection (its default is 2,000 KiB each): appends touch only the
# right edge of the tables and the publisher reads what was just written, so 256 KiB holds
# what is reused (the host agent's benchmark peaks some 2 MB lower)
CACHE_KIB = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    kind TEXT NOT NULL,
    hash TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class JournalError(Exception):
    """The journal cannot be opened, read or written."""


class JournalFull(JournalError):
    """The disk holding the journal is full; the events were not stored."""


class EventRejected(JournalError, ValueError):
    """An event's kind or data cannot be stored (bad kind, not JSON, too big)."""


def check_shape(kind: str, data: Any) -> None:
    """Raise EventRejected unless kind is ``area.name`` and data a dict (cheap; no JSON check)."""
    if not isinstance(kind, str) or not KIND_RE.match(kind) or len(kind) > 64:
        raise EventRejected(f"event kind {kind!r} is not of the form area.name (a-z, 0-9, _)")
    if not isinstance(data, dict):
        raise EventRejected(f"event data for {kind} must be a JSON object")


def check_item(kind: str, data: dict[str, Any]) -> None:
    """Raise EventRejected unless (kind, data) can become an event (checked before any write)."""
    check_shape(kind, data)
    try:
        size = len(json.dumps(data, allow_nan=False, ensure_ascii=False, separators=(",", ":")))
    except (TypeError, ValueError) as exc:
        raise EventRejected(f"event data for {kind} is not plain JSON: {exc}") from exc
    if size > MAX_EVENT_BYTES - 1024:
        raise EventRejected(f"event data for {kind} is {size} bytes; limit {MAX_EVENT_BYTES}")


def _translate(exc: sqlite3.Error, path: Path, doing: str) -> JournalError:
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return JournalFull(
            f"journal {path} is full while {doing}: the disk has no space left; nothing of this "
            "write was stored. Free space on that disk (events already stored are safe)."
        )
    return JournalError(f"journal {path} failed while {doing}: {exc}")


_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


class BatchSealer:
    """Seals events exactly as ``envelope.seal`` does, cheaper per event in a batch.

    ``seal`` validates a pydantic model and serialises the event twice per event. Here the
    canonical JSON is assembled from pre-encoded pieces (the top-level keys are fixed and
    sorted), the timestamp is formatted once per batch, and the returned Event is built without
    re-validation (node, site and boot were validated once, kind and data are checked here; the
    returned ``data`` is decoded from the stored JSON, so it is exactly what was stored).
    ``Journal`` checks at open that both give identical bytes, so they cannot drift apart.
    """

    def __init__(self, key: Ed25519PrivateKey, *, node: str, site: str, boot: str) -> None:
        self._key = key
        self.node, self.site, self.boot = node, site, boot
        self._boot, self._node, self._site = _encode(boot), _encode(node), _encode(site)
        self.last_found = 0  # individual numbers replaced in the data of the last batch sealed

    def seal(
        self,
        items: Sequence[tuple[str, dict[str, Any]]],
        base: tuple[int, str],
        now: datetime,
        clock: ClockState,
    ) -> tuple[list[Event], list[tuple[int, str, str, str, bytes]]]:
        seq, prev = base
        ts = format_ts(now)
        self.last_found = 0
        head = f'{{"boot":{self._boot},"clock":{_encode(clock)},"data":'
        tail = f'"site":{self._site},"ts":{_encode(ts)},"v":{SCHEMA_VERSION}}}'
        events: list[Event] = []
        rows: list[tuple[int, str, str, str, bytes]] = []
        for kind, data in items:
            check_shape(kind, data)
            seq += 1
            middle = (
                f'"id":{_encode(f"{self.node}:{seq}")},"kind":{_encode(kind)},'
                f'"node":{self._node},"prev":"{prev}","seq":{seq},'
            )
            try:
                data_json = _encode(data)
                if json_may_hold_number(data_json):  # no individual number is ever sealed
                    data, found = redact_data(data)
                    if found:
                        self.last_found += found
                        data_json = _encode(data)
                body = f"{head}{data_json},{middle}{tail}".encode()
            except (TypeError, ValueError) as exc:  # incl. lone surrogates (UnicodeEncodeError)
                raise EventRejected(f"event data for {kind} is not plain JSON: {exc}") from exc
            digest = hashlib.sha256(body).hexdigest()
            sig = b64u(self._key.sign(bytes.fromhex(digest)))
            wire = f'{head}{data_json},"hash":"{digest}",{middle}"sig":"{sig}",{tail}'.encode()
            if len(wire) > MAX_EVENT_BYTES:
                raise EventRejected(f"a {kind} event would be {len(wire)} bytes (limit 64 KiB)")
            events.append(
                Event.model_construct(
                    v=SCHEMA_VERSION, node=self.node, site=self.site, seq=seq,
                    id=f"{self.node}:{seq}", ts=ts, boot=self.boot, clock=clock, kind=kind,
                    data=json.loads(data_json), prev=prev, hash=digest, sig=sig,
                )
            )
            rows.append((seq, ts, kind, digest, wire))
            prev = digest
        return events, rows

    def self_check(self) -> None:
        """Raise JournalError unless this sealer and ``envelope.seal`` agree byte for byte."""
        when = datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
        data: dict[str, Any] = {"b": [1, "é\"\n", None, 1.5, True], "a": {"z": 0, "y": "\u2028"}}
        try:
            ref = seal(
                self._key, node=self.node, site=self.site, seq=7, ts=when, boot=self.boot,
                clock="synced", kind="node.check", data=data, prev=GENESIS,
            )
        except ValidationError as exc:
            raise JournalError(f"node {self.node!r}, site {self.site!r} or boot invalid") from exc
        events, rows = self.seal([("node.check", data)], (6, GENESIS), when, "synced")
        if events[0] != ref or rows[0][4] != ref.to_bytes():
            raise JournalError("journal sealer and controller.envelope disagree; fix journal.py")



class Journal:
    def __init__(
        self, path: Path, *, node: str, site: str, key: Ed25519PrivateKey, boot: str,
        previous_key: Ed25519PrivateKey | None = None,
    ) -> None:
        """``previous_key``: the key this journal signed with before ``secroom keys rotate``;
        a journal still claimed by it hands over to ``key`` (``rotation``)."""
        self.path = path
        self.node = node
        self.site = site
        self.boot = boot
        self._key = key
        self._sealer = BatchSealer(key, node=node, site=site, boot=boot)
        self._sealer.self_check()
        self._lock = threading.Lock()  # the writer connection and the durable head
        self._seal_lock = threading.Lock()  # the sealed (maybe not yet durable) head
        self._read_lock = threading.Lock()
        try:
            create_private(path)  # 0600, and so are its -wal and -shm files
            self._db = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30
            )
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise JournalError(f"journal {path}: cannot switch SQLite to WAL (got {mode})")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._db.executescript(_SCHEMA)
            # A second connection for readers (the publisher): in WAL mode it sees every committed
            # row and never waits for a writer's fsync.
            self._reader = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30
            )
            self._reader.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
            handover = self._claim(public_b64(key.public_key()), previous_key)
            row = self._db.execute(
                "SELECT seq, hash, body FROM events ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if handover is not None:
                self._hand_over(handover, key, row[0] + 1 if row is not None else 1)
        except sqlite3.Error as exc:
            raise _translate(exc, path, "opening") from exc
        self._head: tuple[int, str] = (0, GENESIS)
        if row is not None:
            try:
                head = parse(row[2])
            except EnvelopeError as exc:
                raise JournalError(f"journal {path}: the last event is damaged ({exc})") from exc
            self._head = (int(row[0]), str(row[1]))
            if head.seq != row[0] or head.hash != row[1]:
                raise JournalError(f"journal {path}: the last row does not hold event {row[0]}")
        self._sealed = self._head
        self._broken: JournalError | None = None
        self._ack = int(self._meta.get("ack", "0"))
        self.numbers_removed = 0  # replaced by numguard in the events stored since opened
        self._delivered = int(self._meta.get("delivered", "0"))

    def _claim(self, pub: str, previous: Ed25519PrivateKey | None) -> Ed25519PrivateKey | None:
        """Claim the journal for this node, site and key; returns ``previous`` when the journal
        is still the previous key's and must hand over to ``pub``."""
        want = {"node": self.node, "site": self.site, "public_key": pub}
        for name, value in want.items():
            have = self._meta.get(name)
            if (name == "public_key" and have is not None and have != value
                    and previous is not None and public_b64(previous.public_key()) == have):
                return previous
            if have is None:
                self._db.execute("INSERT INTO meta VALUES (?, ?)", (name, value))
                self._meta[name] = value
            elif have != value:
                raise JournalError(
                    f"journal {self.path} belongs to {name} {have!r}, not {value!r}; "
                    "use the matching node configuration and key, or a new journal file"
                )
        return None

    def _hand_over(self, old: Ed25519PrivateKey, new: Ed25519PrivateKey, from_seq: int) -> None:
        """Sign, with the old key, that the new key signs from ``from_seq`` on (kept in meta and
        announced in the node's state: ``rotation``); events already journaled keep their old
        signatures."""
        statement = rotation_statement(old, new.public_key(), node=self.node, site=self.site,
                                       from_seq=from_seq)
        text = json.dumps(statement, sort_keys=True)
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('public_key', ?)",
                         (public_b64(new.public_key()),))
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('rotation', ?)", (text,))
        self._db.execute("COMMIT")
        self._meta.update(public_key=public_b64(new.public_key()), rotation=text)

    @property
    def rotation(self) -> dict[str, Any] | None:
        """The last key rotation statement of this journal (controller.keys), or None."""
        text = self._meta.get("rotation")
        return json.loads(text) if text else None

    # -- writing -----------------------------------------------------------------------------

    def append(self, kind: str, data: dict[str, Any], *, now: datetime, clock: ClockState) -> Event:
        return self.append_many([(kind, data)], now=now, clock=clock)[0]

    def append_many(
        self,
        items: Sequence[tuple[str, dict[str, Any]]],
        *,
        now: datetime,
        clock: ClockState,
    ) -> list[Event]:
        """Seal and store ``items`` in one transaction; durable when this returns.

        Two stages, so that one batch can be sealed (CPU) while the previous one is committed
        (fsync): a batch is sealed under ``_seal_lock`` and takes the writer lock ``_lock``
        before letting go of it, so commits happen in seal order. A batch is written only if it
        chains onto the durable head: if an earlier batch failed after this one was sealed on
        top of it, this one fails too, and the next sealer starts again from the durable head.
        """
        if not items:
            return []
        with self._seal_lock:
            if self._broken is not None:
                # Every batch sealed before us holds or held the writer: once we hold it they
                # have all finished, and the chain restarts from what is durable.
                with self._lock:
                    self._sealed, self._broken = self._head, None
            base = self._sealed
            events, rows = self._seal(items, base, now, clock)
            found = self._sealer.last_found
            self._sealed = (events[-1].seq, events[-1].hash)
            self._lock.acquire()
        try:
            if base != self._head:
                earlier = self._broken or JournalError("an earlier write failed")
                raise type(earlier)(f"not stored, an earlier write failed: {earlier}")
            try:
                self._write(
                    "storing events",
                    "INSERT INTO events (seq, ts, kind, hash, body) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            except JournalError as exc:
                self._broken = exc
                raise
            self._head = (events[-1].seq, events[-1].hash)
            self.numbers_removed += found
            return events
        finally:
            self._lock.release()

    def _seal(
        self,
        items: Sequence[tuple[str, dict[str, Any]]],
        base: tuple[int, str],
        now: datetime,
        clock: ClockState,
    ) -> tuple[list[Event], list[tuple[int, str, str, str, bytes]]]:
        return self._sealer.seal(items, base, now, clock)

    def _write(self, doing: str, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Run ``sql`` for every row in one committed transaction, or not at all."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(sql, rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise _translate(exc, self.path, doing) from exc

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the caller sees the original error
                self._db.execute("ROLLBACK")

    def _set_meta(self, name: str, value: int) -> None:
        self._set_metas({name: value})

    def _set_metas(self, values: dict[str, int]) -> None:
        self._write(f"recording {', '.join(values)}", "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [(name, str(v)) for name, v in values.items()])
        self._meta.update((name, str(v)) for name, v in values.items())

    # -- marks -------------------------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        return self._head  # replaced atomically after each commit; no lock needed

    @property
    def ack(self) -> int:
        """Highest seq the dashboard said it stored contiguously (0: no ack yet)."""
        return self._ack

    def set_ack(self, seq: int) -> None:
        """Record the dashboard's mark; an older mark is ignored, one above the head refused."""
        with self._lock:
            if seq <= self._ack:
                return
            if seq > self._head[0]:
                raise JournalError(f"ack {seq} is above the journal head {self._head[0]}")
            self._set_meta("ack", seq)
            self._ack = seq

    def hash_at(self, seq: int) -> str | None:
        """The hash of the stored event ``seq`` (None if it is not stored)."""
        try:
            with self._read_lock:
                row = self._reader.execute("SELECT hash FROM events WHERE seq = ?",
                                           (seq,)).fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path, "reading events") from exc
        return None if row is None else str(row[0])

    def receipt_counter(self, kind: str) -> int:
        """The highest counter of a dashboard receipt (``ack`` or ``resend``) accepted."""
        return int(self._meta.get(f"{kind}_counter", "0"))

    def accept_receipt(self, kind: str, counter: int, *, ack: tuple[int, str] | None = None
                       ) -> bool:
        """Take a signed receipt's counter (and, for an ack, its seq and hash) if it is news.

        False for a repeat (the same counter: the retained ack re-delivered on reconnect) and
        for a stale ack: an older counter acknowledging no more than the ack already taken
        (two dashboard replicas' acks crossing at a lease hand-over, or a site bridge that
        hands over its retained ack before the ones it queued while cut); it changes nothing.
        Raises ``ReceiptRefused`` for any other older counter (a replay), an ack beyond the
        head, or an ack whose hash is not the one this journal stored at that seq; nothing is
        recorded then, so nothing is pruned."""
        with self._lock:
            have = self.receipt_counter(kind)
            if counter == have:
                return False
            if counter < have:
                if ack is not None and ack[0] <= self._ack and self.hash_at(ack[0]) in (
                        None, ack[1]):
                    return False
                raise ReceiptRefused("replayed", f"{kind} counter {counter} is older than {have}")
            if ack is not None:
                seq, digest = ack
                if seq > self._head[0]:
                    raise ReceiptRefused("beyond_head",
                                       f"ack {seq} is above the journal head {self._head[0]}")
                stored = self.hash_at(seq)
                if stored is not None and stored != digest:
                    raise ReceiptRefused("not_ours", f"ack {seq} names an event this node did "
                                                   "not write")
                if stored is None and seq > self._ack:
                    raise ReceiptRefused("not_ours", f"ack {seq}: no such event stored here")
                if seq > self._ack:
                    # the counter and the ack in one transaction, and the ack visible last:
                    # whoever sees the new ack (wait_acked) sees its counter too
                    self._set_metas({f"{kind}_counter": counter, "ack": seq})
                    self._ack = seq
                    return True
            self._set_metas({f"{kind}_counter": counter})
        return True

    @property
    def delivered(self) -> int:
        """Highest seq the broker acknowledged contiguously, as last recorded."""
        return self._delivered

    def set_delivered(self, seq: int) -> None:
        with self._lock:
            seq = min(seq, self._head[0])
            if seq <= self._delivered:
                return
            self._set_meta("delivered", seq)
            self._delivered = seq

    # -- reading and pruning -----------------------------------------------------------------

    def first(self) -> int:
        """Lowest seq still stored (0 when empty)."""
        try:
            with self._read_lock:
                row = self._reader.execute("SELECT MIN(seq) FROM events").fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path, "reading events") from exc
        return int(row[0] or 0)

    def raw(self, first: int, last: int, limit: int = 1000) -> list[tuple[int, str, bytes]]:
        """(seq, kind, wire bytes) for stored seqs in [first, last], in order."""
        try:
            with self._read_lock:
                rows = self._reader.execute(
                    "SELECT seq, kind, body FROM events WHERE seq >= ? AND seq <= ? "
                    "ORDER BY seq LIMIT ?",
                    (first, last, limit),
                ).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path, "reading events") from exc
        return [(int(s), str(k), bytes(b)) for s, k, b in rows]

    def events(self, first: int, last: int | None = None, limit: int = 1000) -> list[Event]:
        top = self._head[0] if last is None else last
        return [parse(body) for _, _, body in self.raw(first, top, limit)]

    def first_seq_since(self, cutoff: str) -> int | None:
        """Lowest seq whose ts (ISO text, UTC) is at or after ``cutoff``."""
        try:
            with self._read_lock:
                row = self._reader.execute(
                    "SELECT seq FROM events WHERE ts >= ? ORDER BY seq LIMIT 1", (cutoff,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path, "reading events") from exc
        return None if row is None else int(row[0])

    def prune(self, *, below: int) -> int:
        """Delete rows with seq < ``below``; the head row always stays. Returns rows deleted."""
        with self._lock:
            below = min(below, self._head[0])
            first = self.first()
            if first == 0 or below <= first:
                return 0
            anchor = self._db.execute(
                "SELECT hash FROM events WHERE seq = ?", (below - 1,)
            ).fetchone()
            if anchor is None:
                raise JournalError(f"journal {self.path}: event {below - 1} missing; run verify")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                cur = self._db.execute("DELETE FROM events WHERE seq < ?", (below,))
                self._db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("pruned_below", str(below)), ("pruned_hash", str(anchor[0]))],
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise _translate(exc, self.path, "pruning") from exc
            self._meta.update(pruned_below=str(below), pruned_hash=str(anchor[0]))
            return int(cur.rowcount)

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._reader.close()
            self._db.close()
