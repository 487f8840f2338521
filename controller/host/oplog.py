"""The operations log: journal and audit entries in, signed events in the node journal out.

One loop per source (``run_journal``, ``run_audit``): read what is there, turn it into
operations, gather bursts (bursts.py), and when they are due journal them with ``emit_many``
(one commit). The last event of each commit carries the source position it covers; after the
commit the position is also written to a file. On start the position is the newest one the
node journal holds (it is committed with the events, so a crash between the commit and the file
loses nothing and reads nothing twice), else the file's (the journal may have pruned the old
rows). Nothing read is dropped: a line or entry that cannot be understood is counted; a
position that cannot be found again is journaled as host.oplog_gap.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from controller.host.audit_source import AuditParseError, LaurelTail, parse_laurel
from controller.host.bursts import Bursts, Resolve
from controller.host.classify import classify
from controller.host.config import HostAgentConfig
from controller.host.events import (
    KIND_AUTH_FAILED,
    KIND_FILE_ACCESS,
    KIND_OPLOG_GAP,
    KIND_SESSION,
    KIND_SUDO,
    HostOplogGap,
)

log = logging.getLogger(__name__)
JOURNAL_KINDS = frozenset({KIND_SESSION, KIND_SUDO, KIND_AUTH_FAILED})
AUDIT_KINDS = frozenset({KIND_FILE_ACCESS})
SCAN_BACK = 50_000  # journal rows searched for the newest position before trusting the file
# journal entries read at a time: a burst is committed (at most Bursts.max_events events) once
# due, checked after each read, so a read of 2,000 held some 2,000 events and their sealed
# copies at once (about 12 MB more peak memory for no gain in entries per second)
READ_BATCH = 250
EmitMany = Callable[[Sequence[tuple[str, BaseModel]]], Any]


def newest_position(journal: Any, kinds: frozenset[str]) -> str | None:
    """The position carried by the newest event of ``kinds`` still in the node journal."""
    head = journal.head()[0]
    floor = max(journal.first(), head - SCAN_BACK + 1, 1)
    top = head
    while top >= floor:
        low = max(floor, top - 499)
        for _seq, kind, body in reversed(journal.raw(low, top, 500)):
            if kind in kinds:
                position = orjson.loads(body).get("data", {}).get("position")
                if isinstance(position, str):
                    return position
        top = low - 1
    return None


class PositionFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> str | None:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def write(self, position: str) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(position)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class OperationsLog:
    def __init__(self, config: HostAgentConfig, *, emit_many: EmitMany, resolve: Resolve,
                 journal: Any, state_dir: Path, clock: Callable[[], datetime],
                 quiet_s: float = 1.0, max_s: float = 30.0) -> None:
        self.config = config
        self.emit_many = emit_many
        self.resolve = resolve
        self.node_journal = journal
        self.clock = clock
        self.quiet_s, self.max_s = quiet_s, max_s
        self.files = {"journal": PositionFile(state_dir / "oplog-journal.pos"),
                      "audit": PositionFile(state_dir / "oplog-audit.pos")}
        self.counters: Counter[str] = Counter()
        self.ready = {"journal": threading.Event(), "audit": threading.Event()}

    def position(self, source: str) -> str | None:
        kinds = JOURNAL_KINDS if source == "journal" else AUDIT_KINDS
        return newest_position(self.node_journal, kinds) or self.files[source].read()

    # -- committing --------------------------------------------------------------------------

    def _commit(self, source: str, bursts: Bursts, position: str | None) -> None:
        events = bursts.drain(self.resolve)
        if not events:
            return
        if position is not None:
            kind, last = events[-1]
            events[-1] = (kind, last.model_copy(update={"position": position}))
        self.emit_many(events)
        self.counters[f"{source}.events"] += len(events)
        if position is not None:
            try:
                self.files[source].write(position)
            except OSError as exc:  # the journal holds it too: the next start finds it there
                self.counters[f"{source}.position_write_errors"] += 1
                log.warning("could not write the %s position file: %s", source, exc)

    def _gap(self, source: str, detail: str) -> None:
        self.counters[f"{source}.gaps"] += 1
        self.emit_many([(KIND_OPLOG_GAP, HostOplogGap(host=self.config.host, source=source,
                                                      detail=detail[:512]))])

    # -- the journal -------------------------------------------------------------------------

    def run_journal(self, stop: threading.Event) -> None:
        from controller.host.journal_source import JournalSource

        src = JournalSource(self.config.journal.directory, self.position("journal"),
                            now=self.clock())
        bursts = Bursts(self.config.host, quiet_s=self.quiet_s, max_s=self.max_s)
        if src.gap:
            self._gap("journal", src.gap)
        self.ready["journal"].set()
        position: str | None = None
        try:
            while not stop.is_set():
                entries = src.read(READ_BATCH)
                for e in entries:
                    self.counters["journal.entries"] += 1
                    op = classify(e)
                    if op is not None:
                        bursts.add(op, time.monotonic())
                    position = e.cursor
                if bursts.due(time.monotonic()):
                    self._commit("journal", bursts, position)
                if not entries:
                    src.wait(self.quiet_s if bursts.held else 1.0)
        finally:
            with contextlib.suppress(Exception):
                self._commit("journal", bursts, position)
            src.close()

    # -- the audit log -----------------------------------------------------------------------

    def run_audit(self, stop: threading.Event) -> None:
        tail = LaurelTail(self.config.audit.laurel_log, self.position("audit"))
        bursts = Bursts(self.config.host, quiet_s=self.quiet_s, max_s=self.max_s)
        if tail.gap:
            self._gap("audit", tail.gap)
        self.ready["audit"].set()
        position: str | None = None
        try:
            while not stop.is_set():
                lines = tail.read_lines()
                for line, pos in lines:
                    self.counters["audit.lines"] += 1
                    try:
                        ops = parse_laurel(line, self.config.watches)
                    except AuditParseError:
                        self.counters["audit.bad_lines"] += 1
                        ops = []
                    mono = time.monotonic()
                    for op in ops:
                        bursts.add(op, mono)
                    position = pos
                if not lines and position is not None and not bursts.held:
                    self._remember("audit", position)
                    position = None
                if bursts.due(time.monotonic()):
                    self._commit("audit", bursts, position)
                    position = None
                if not lines:
                    stop.wait(0.2)
        finally:
            with contextlib.suppress(Exception):
                self._commit("audit", bursts, position)
            tail.close()

    def _remember(self, source: str, position: str) -> None:
        """Lines read that held nothing of ours: only the file moves on (re-reading them after
        a crash finds nothing either)."""
        with contextlib.suppress(OSError):
            self.files[source].write(position)
