"""The systemd journal as the operations log's source (the only python-systemd importer).

A ``journal.Reader`` filtered to the entries the classifier reads (logind's session messages
and the identifiers of sudo, su, sshd, polkit, pkexec and the log-in services), resumed from a
cursor: ``seek_cursor`` then ``get_next`` gives the entry *at* the cursor (python-systemd), so
that one is skipped and reading goes on after it. A cursor no longer in the journal (vacuumed,
or another machine's) is reported in ``gap`` and reading goes on from the entry the journal
puts next (``seek_cursor`` falls back on the cursor's time and sequence number).
Without a cursor (first start) reading begins ``first_lookback`` before now. ``wait`` blocks
until the journal changes (inotify), it never polls.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from systemd import journal

from controller.host.classify import IDENTIFIERS, MESSAGE_IDS, JournalEntry


class JournalSourceError(Exception):
    """The journal cannot be opened or read (the message says which)."""


def _identity(value: object) -> object:
    return value


# MESSAGE and the ids stay as they are stored (no int/UUID conversion): the classifier wants
# text, and converting costs time on every entry.
_CONVERTERS = {name: _identity for name in ("SESSION_ID", "USER_ID", "MESSAGE_ID", "_PID",
                                             "_UID", "PRIORITY")}


# Entries read before the reader is reopened at its cursor: sd-journal keeps the file windows
# it mapped while reading, and they count in the agent's memory (a burst of 20,000 entries
# took the agent from 52 to 62 MB); reopening lets them go.
REOPEN_AFTER = 2000


class JournalSource:
    def __init__(self, directory: Path | None, cursor: str | None, *, now: datetime,
                 first_lookback: timedelta = timedelta(days=1)) -> None:
        self.gap: str | None = None
        self._held: dict[str, object] | None = None  # read while seeking, not yet handed out
        self._directory = directory
        self._reader = self._open()
        self._since_open = 0
        self._last_cursor: str | None = cursor
        self._seek(cursor, now, first_lookback)

    def _open(self) -> journal.Reader:
        directory = self._directory
        try:
            if directory is None:
                reader = journal.Reader(converters=_CONVERTERS)
            else:
                reader = journal.Reader(path=str(directory), converters=_CONVERTERS)
        except OSError as exc:
            raise JournalSourceError(f"cannot open the journal {directory or ''}: {exc}") from exc
        for i, ident in enumerate(IDENTIFIERS):
            if i:
                reader.add_disjunction()
            reader.add_match(SYSLOG_IDENTIFIER=ident)
        for mid in MESSAGE_IDS:
            reader.add_disjunction()
            reader.add_match(MESSAGE_ID=mid)
        return reader

    def _reopen(self, now: datetime) -> None:
        """A fresh reader at the last entry handed out (``_seek`` skips that entry)."""
        self._reader.close()
        self._reader = self._open()
        self._since_open = 0
        self._seek(self._last_cursor, now, timedelta(days=1))

    def _seek(self, cursor: str | None, now: datetime, lookback: timedelta) -> None:
        r = self._reader
        if not cursor:
            r.seek_realtime(now - lookback)
            return
        try:
            r.seek_cursor(cursor)
        except (OSError, ValueError) as exc:
            self.gap = f"stored journal cursor unusable ({exc}); reading from {now - lookback}"
            r.seek_realtime(now - lookback)
            return
        entry = r.get_next()
        if not entry:
            return  # the cursor was the last entry: nothing new yet
        if not r.test_cursor(cursor):
            # the entry at the cursor is gone: what follows may not be all there was
            self.gap = "the stored journal position is no longer in the journal"
            self._held = entry

    def read(self, limit: int = 2000) -> list[JournalEntry]:
        out: list[JournalEntry] = []
        if self._held is not None:
            out.append(JournalEntry.from_fields(self._held))
            self._held = None
        get = self._reader.get_next
        try:
            while len(out) < limit:
                fields = get()
                if not fields:
                    break
                out.append(JournalEntry.from_fields(fields))
        except OSError as exc:
            raise JournalSourceError(f"reading the journal failed: {exc}") from exc
        if out:
            self._last_cursor = out[-1].cursor
            self._since_open += len(out)
            if self._since_open >= REOPEN_AFTER and self._held is None:
                self._reopen(datetime.now(UTC))
        return out

    def wait(self, timeout_s: float) -> None:
        """Block until the journal changes or ``timeout_s`` passes."""
        self._reader.wait(timeout_s)

    def close(self) -> None:
        self._reader.close()
