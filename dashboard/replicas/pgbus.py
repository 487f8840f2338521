"""The bus across replicas: PostgreSQL LISTEN/NOTIFY (see dashboard.bus for the bus itself).

``SharedBus.publish`` delivers to this process's subscribers at once, as ``Bus`` does, and
queues the message for the others: a sender thread packs what is queued into NOTIFY payloads
(JSON, under PostgreSQL's 8,000-byte limit) every ``flush_s``; a listener thread, on a
connection of its own, publishes what other replicas sent on this bus only. An event whose
data alone is too big goes without its data (the page shows the row, the correlation reads the
stored event by node and seq). Messages are best effort, like the bus: if the database is
unreachable they are dropped and counted (``remote_dropped``), never raised into ingest.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from typing import Any

import psycopg
from sqlalchemy import make_url

from dashboard.bus import Bus, BusMessage, Topic

MAX_PAYLOAD = 7800
QUEUED_MAX = 50_000


def channel_for(database_url: str) -> str:
    """One channel per database and schema (the URL, password aside)."""
    url = make_url(database_url).set(password=None)
    digest = hashlib.sha256(url.render_as_string(hide_password=False).encode()).hexdigest()
    return f"secroom_bus_{digest[:16]}"


def conninfo(database_url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _packed(item: tuple[str, dict[str, Any]]) -> str:
    topic, data = item
    text = json.dumps([topic, data], ensure_ascii=False, default=str, separators=(",", ":"))
    if len(text.encode()) > MAX_PAYLOAD - 64 and topic == "event":
        slim = {k: v for k, v in data.items() if k != "data"}
        text = json.dumps([topic, slim], ensure_ascii=False, default=str, separators=(",", ":"))
    return text


class SharedBus(Bus):
    def __init__(self, database_url: str, *, replica: str, flush_s: float = 0.05) -> None:
        super().__init__()
        self.conninfo = conninfo(database_url)
        self.channel = channel_for(database_url)
        self.replica = replica
        self.flush_s = flush_s
        self.remote_received = 0
        self.remote_sent = 0
        self.remote_dropped = 0
        self.last_error: str | None = None
        self._out: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(QUEUED_MAX)
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._threads: list[threading.Thread] = []
        self._own = f'{{"r":{json.dumps(replica)},'  # our own notifications start so

    def publish(self, topic: Topic, data: dict[str, Any]) -> BusMessage:
        msg = super().publish(topic, data)
        if self._threads:
            try:
                self._out.put_nowait((topic, data))
            except queue.Full:
                self.remote_dropped += 1
        return msg

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for target, name in ((self._listen, "bus-listen"), (self._send, "bus-notify")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self._listening.wait(30)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)
        self._threads = []

    # -- threads -----------------------------------------------------------------------------

    def _send(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self._stop.is_set():
            try:
                first = self._out.get(timeout=0.5)
            except queue.Empty:
                continue
            self._stop.wait(self.flush_s)  # let a burst gather into few notifications
            items = [first]
            while len(items) < 5000:
                try:
                    items.append(self._out.get_nowait())
                except queue.Empty:
                    break
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfo, autocommit=True)
                for payload in self._payloads(items):
                    conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
                self.remote_sent += len(items)
            except psycopg.Error as exc:
                self.remote_dropped += len(items)
                self.last_error = f"notify failed: {exc}"
                conn = None
                self._stop.wait(1.0)
        if conn is not None:
            conn.close()

    def _payloads(self, items: list[tuple[str, dict[str, Any]]]) -> list[str]:
        head = json.dumps(self.replica)
        out: list[str] = []
        part: list[str] = []
        size = len(head) + 16
        for item in items:
            text = _packed(item)
            n = len(text.encode()) + 1
            if size + n > MAX_PAYLOAD:
                if n + len(head) + 16 > MAX_PAYLOAD:
                    self.remote_dropped += 1
                    continue
                if part:
                    out.append(f'{{"r":{head},"m":[{",".join(part)}]}}')
                part, size = [], len(head) + 16
            part.append(text)
            size += n
        if part:
            out.append(f'{{"r":{head},"m":[{",".join(part)}]}}')
        return out

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')
                    self._listening.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self._take(note.payload)
            except psycopg.Error as exc:
                self.last_error = f"listen failed: {exc}"
                self._listening.set()  # start() must not hang on a database that is down
                self._stop.wait(1.0)

    def _take(self, payload: str) -> None:
        if payload.startswith(self._own):
            return  # ours, delivered here already: not even parsed
        try:
            blob = json.loads(payload)
            if blob.get("r") == self.replica:
                return  # our own, delivered here already
            for topic, data in blob.get("m", ()):
                Bus.publish(self, topic, data)
                self.remote_received += 1
        except (ValueError, TypeError, AttributeError) as exc:
            self.last_error = f"bad notification: {exc}"
