"""The dashboard's broker link in a process of its own.

paho parses every MQTT packet in Python: about as much CPU per event as the whole ingest after
it, and under one GIL the two take turns. ``LinkProcess`` runs an ordinary ``MqttLink`` in a
child process and passes batches of raw (topic, payload) pairs to this process over a pipe, so
receiving and storing overlap on two cores (and the web server no longer shares its GIL with
packet parsing). It has the part of ``MqttLink``'s interface the ingest consumer and the policy
signer use: ``start``/``stop``, ``subscribe``, ``publish``, ``wait_subscribed``, ``connected``,
``stats`` and ``last_error``. A bulk consumer routes batches by broad filters (``route_many``)
and has the broker send it only what it asks for (``add_filters``/``remove_filters``: a
dashboard replica, its leased nodes' topics; dashboard.replicas).

Delivery is no weaker than one link in this process: the MQTT PUBACK was never the node's
receipt (the dashboard's per-node ack of stored events is), and a message lost with the child
is asked for again by the consumer's catch-up after the reconnect. If the child dies it is
started again, with the subscriptions and the latest retained publications (acks, policy)
sent again on its new connection.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import threading
import time
from collections.abc import Callable, Collection
from multiprocessing.connection import Connection
from typing import Any

from controller.envelope import MAX_EVENT_BYTES
from controller.mqtt import MqttError, MqttLink, MqttSettings, topic_matches
from dashboard.ingest.gc_tuning import tune_gc
from dashboard.ingest.verify import sigint_blocked, worker_init

Handler = Callable[[str, bytes], None]
BatchHandler = Callable[[list[tuple[str, bytes]]], None]


BATCH_MAX = 2000  # messages per pipe send
CHILD_BUFFER_MAX = 20_000  # past this the child's paho thread waits (TCP back-pressure)
CHILD_BUFFER_BYTES = 32 * 1024 * 1024  # ... and past this many payload bytes
STATS_EVERY_S = 0.5
LINGER_S = 0.002  # what a live event may wait in the link process for others to join it


class LinkProcess:
    def __init__(self, settings: MqttSettings, *, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self.connected = threading.Event()
        self.last_error: str | None = None
        self.restarts = 0
        self._stats: dict[str, int] = {}
        self._base: dict[str, int] = {}  # counters of children that died
        self._subs: dict[str, tuple[int, list[Handler]]] = {}
        self._batch_handlers: list[tuple[tuple[str, ...], BatchHandler]] = []
        self._sent_filters: set[str] = set()  # filters the current child was asked for
        self._retained: dict[str, tuple[bytes, int]] = {}
        self._skip: list[str] = []  # nodes whose messages the child drops (another replica's)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._subscribed = threading.Condition(self._lock)
        self._pending_subs = 0
        self._mids = itertools.count(1)
        self._conn: Connection | None = None
        self._proc: Any = None
        self._reader: threading.Thread | None = None
        self._stopping = threading.Event()

    def __repr__(self) -> str:
        s = self.settings
        state = "connected" if self.connected.is_set() else "disconnected"
        return f"LinkProcess({self.client_id!r} -> {s.host}:{s.port}, {state})"

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            keys = set(self._stats) | set(self._base)
            return {k: self._base.get(k, 0) + self._stats.get(k, 0) for k in keys}

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._reader is not None:
            return
        self._stopping.clear()
        self._spawn()
        self._reader = threading.Thread(target=self._read, name="link-process", daemon=True)
        self._reader.start()

    def stop(self) -> None:
        self._stopping.set()
        self._send(("stop",))
        if self._proc is not None:
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        if self._reader is not None:
            self._reader.join(10)
            self._reader = None
        self.connected.clear()

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=_child_main,
            args=(child, self.settings.model_dump(mode="json"), self.client_id),
            name=f"secroom-link-{self.client_id}",
            daemon=True,
        )
        with sigint_blocked():
            proc.start()
        child.close()
        with self._lock:
            self._conn, self._proc = parent, proc
            subs = [(f, qos) for f, (qos, _) in self._subs.items()]
            retained = list(self._retained.items())
            self._pending_subs = len(subs)  # a new child has none yet
            self._sent_filters = {f for f, _ in subs}
            skip = self._skip
        if skip:
            self._send(("skip", skip))
        for topic_filter, qos in subs:
            self._send(("sub", topic_filter, qos))
        for topic, (payload, qos) in retained:
            self._send(("pub", topic, payload, qos, True))

    # -- the MqttLink interface --------------------------------------------------------------

    def subscribe(self, topic_filter: str, handler: Handler, *, qos: int = 1) -> None:
        MqttLink.check_filter(topic_filter)
        with self._lock:
            _, handlers = self._subs.get(topic_filter, (qos, []))
            self._subs[topic_filter] = (qos, [*handlers, handler])
        self._add_filters([topic_filter], qos)

    def subscribe_many(self, filters: list[str], handler: BatchHandler, *, qos: int = 1) -> None:
        """Deliver the messages of a received batch that match any of ``filters`` to
        ``handler`` as one list (in order): no per-message call for a bulk consumer."""
        for topic_filter in filters:
            MqttLink.check_filter(topic_filter)
        with self._lock:
            self._batch_handlers.append((tuple(filters), handler))
            for topic_filter in filters:
                self._subs.setdefault(topic_filter, (qos, []))
        self._add_filters(filters, qos)

    def route_many(self, filters: list[str], handler: BatchHandler) -> None:
        """As ``subscribe_many``, but nothing is subscribed at the broker: ``handler`` gets
        what matches ``filters`` of what other subscriptions (``add_filters``) bring in."""
        for topic_filter in filters:
            MqttLink.check_filter(topic_filter)
        with self._lock:
            self._batch_handlers.append((tuple(filters), handler))

    def add_filters(self, filters: list[str], *, qos: int = 1) -> None:
        """Subscribe ``filters`` at the broker (for ``route_many``'s handlers); kept across
        restarts of the child like every subscription."""
        for topic_filter in filters:
            MqttLink.check_filter(topic_filter)
        with self._lock:
            for topic_filter in filters:
                self._subs.setdefault(topic_filter, (qos, []))
        self._add_filters(filters, qos)

    def remove_filters(self, filters: list[str]) -> None:
        """Unsubscribe ``filters`` that ``add_filters`` subscribed (not those with handlers of
        ``subscribe``). What the broker sent before it took the UNSUBSCRIBE still comes in:
        the caller drops it."""
        gone = []
        with self._lock:
            for topic_filter in filters:
                entry = self._subs.get(topic_filter)
                if entry is not None and not entry[1]:
                    del self._subs[topic_filter]
                    self._sent_filters.discard(topic_filter)
                    gone.append(topic_filter)
        for topic_filter in gone:
            self._send(("unsub", topic_filter))

    @property
    def subscriptions(self) -> list[str]:
        """The filters subscribed at the broker (or to be, by a child starting), sorted."""
        with self._lock:
            return sorted(self._subs)

    def _add_filters(self, filters: list[str], qos: int) -> None:
        """Have the child subscribe the filters it does not have yet."""
        with self._lock:
            new = [f for f in filters if f not in self._sent_filters]
            self._sent_filters.update(new)
            self._pending_subs += len(new)  # until the child reports them subscribed
        for topic_filter in new:
            self._send(("sub", topic_filter, qos))

    def skip_nodes(self, nodes: Collection[str]) -> None:
        """Have the child drop the messages of ``nodes`` (the nodes another replica holds the
        lease of, dashboard.replicas) before they cost a pipe transfer; counted as
        ``not_leased`` in ``stats``."""
        with self._lock:
            self._skip = sorted(nodes)
            skip = self._skip
        self._send(("skip", skip))

    def wait_subscribed(self, timeout: float) -> bool:
        with self._subscribed:
            return self._subscribed.wait_for(
                lambda: self.connected.is_set() and self._pending_subs <= 0, timeout
            )

    def wait_restarted(self, count: int, timeout: float) -> bool:
        """True once ``count`` children have been started again and the last one subscribed."""
        with self._subscribed:
            return self._subscribed.wait_for(
                lambda: (
                    self.restarts >= count and self.connected.is_set() and self._pending_subs <= 0
                ),
                timeout,
            )

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Hand one message to the child's broker connection (raises MqttError while the child
        is not connected). Retained messages are also sent again by a restarted child."""
        if not self.connected.is_set():
            raise MqttError(
                f"not connected to the broker at {self.settings.host}:{self.settings.port}"
            )
        if retain:
            with self._lock:
                self._retained[topic] = (bytes(payload), qos)
        if not self._send(("pub", topic, bytes(payload), qos, retain)):
            raise MqttError("the broker link process is not running")
        return next(self._mids)

    # -- pipe --------------------------------------------------------------------------------

    def _send(self, msg: tuple[Any, ...]) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            with self._send_lock:
                conn.send(msg)
        except (OSError, ValueError):  # the child is gone; the reader restarts it
            return False
        return True

    def _read(self) -> None:
        while not self._stopping.is_set():
            conn = self._conn
            assert conn is not None
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                self._child_died()
                continue
            kind = msg[0]
            if kind == "msgs":
                self._deliver(msg[1])
            elif kind == "stats":
                _, stats, connected, error, pending, filters = msg
                with self._subscribed:
                    self._stats = stats
                    self.last_error = error
                    # filters asked for and not yet subscribed by the child (never below
                    # what it has pending: some it has may be on their way out)
                    self._pending_subs = pending + max(0, len(self._subs) - filters)
                    if connected:
                        self.connected.set()
                    else:
                        self.connected.clear()
                    self._subscribed.notify_all()

    def _deliver(self, items: list[tuple[str, bytes]]) -> None:
        with self._lock:
            subs = [(f, hs) for f, (_, hs) in self._subs.items() if hs]
            batch_handlers = list(self._batch_handlers)
        for filters, batch_handler in batch_handlers:
            wanted: dict[str, bool] = {}  # a batch holds few distinct topics: match each once
            matched = []
            for it in items:
                ok = wanted.get(it[0])
                if ok is None:
                    ok = wanted[it[0]] = any(topic_matches(f, it[0]) for f in filters)
                if ok:
                    matched.append(it)
            if matched:
                try:
                    batch_handler(matched)
                except Exception:
                    with self._lock:
                        self._base["handler_errors"] = self._base.get("handler_errors", 0) + 1
        if not subs:
            return
        for topic, payload in items:
            for topic_filter, handlers in subs:
                if topic_matches(topic_filter, topic):
                    for handler in handlers:
                        try:
                            handler(topic, payload)
                        except Exception:  # as in MqttLink: counted, the reader lives on
                            with self._lock:
                                self._base["handler_errors"] = (
                                    self._base.get("handler_errors", 0) + 1
                                )

    def _child_died(self) -> None:
        self.connected.clear()
        if self._stopping.is_set():
            return
        with self._lock:
            for k, v in self._stats.items():
                self._base[k] = self._base.get(k, 0) + v
            self._base["disconnects"] = self._base.get("disconnects", 0) + 1
            self._stats = {}
            self.last_error = "the broker link process exited; starting it again"
        if self._proc is not None:
            self._proc.join(1)
        if self._stopping.wait(min(5.0, 0.2 * (self.restarts + 1))):
            return
        self._spawn()
        with self._subscribed:
            self.restarts += 1
            self._subscribed.notify_all()


# -- the child ---------------------------------------------------------------------------------


def _child_main(conn: Connection, settings: dict[str, Any], client_id: str) -> None:
    worker_init()  # dies with the dashboard, even a SIGKILLed one
    tune_gc()  # paho allocates a handful of objects per message
    link = MqttLink(MqttSettings.model_validate(settings), client_id=client_id)
    buf: list[tuple[str, bytes]] = []
    held = [0]  # payload bytes in ``buf``
    cond = threading.Condition()
    done = threading.Event()
    send_lock = threading.Lock()

    topics: dict[str, str] = {}
    skip: list[frozenset[str]] = [frozenset()]
    skipped = [0]

    def on_message(topic: str, payload: bytes) -> None:
        if skip[0]:
            parts = topic.split("/", 4)
            if len(parts) > 4 and parts[3] in skip[0]:
                skipped[0] += 1  # another replica's node: not forwarded, not acked
                return
        # one string object per distinct topic: pickle then writes it once per batch, and the
        # parent builds it once instead of once per message
        same = topics.get(topic)
        if same is None:
            if len(topics) > 10_000:
                topics.clear()
            same = topics[topic] = topic
        with cond:
            while (len(buf) >= CHILD_BUFFER_MAX or held[0] >= CHILD_BUFFER_BYTES) \
                    and not done.is_set():
                cond.wait(0.5)
            buf.append((same, payload))
            held[0] += len(payload)
            if len(buf) == 1:
                cond.notify_all()

    def send(msg: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(msg)

    def stats() -> tuple[Any, ...]:
        msg = _stats(link)
        if skipped[0]:
            msg[1]["not_leased"] = skipped[0]
        return msg

    def forward() -> None:
        last_stats = 0.0
        while not done.is_set():
            with cond:
                if not buf:
                    cond.wait(STATS_EVERY_S)
                if buf and len(buf) < BATCH_MAX:
                    cond.wait(LINGER_S)  # a stream: let a batch gather (one pipe send for many)
                items = buf[:BATCH_MAX]
                del buf[: len(items)]
                held[0] -= sum(len(p) for _, p in items)
                drained = not buf
                cond.notify_all()
            try:
                if items:
                    send(("msgs", items))
                now = time.monotonic()
                # stats when idle again (so a caller sees its messages counted) or now and then
                if (items and drained) or now - last_stats >= STATS_EVERY_S:
                    last_stats = now
                    send(stats())
            except (OSError, ValueError):
                done.set()

    retained: dict[str, tuple[bytes, int]] = {}
    retained_lock = threading.Lock()

    def report() -> None:
        with contextlib.suppress(OSError, ValueError):
            send(stats())

    def connected() -> None:
        # what was retained (acks, policy) goes out again on every new connection: it may
        # have come from the parent while this child was not yet, or no longer, connected
        with retained_lock:
            again = list(retained.items())
        for topic, (payload, qos) in again:
            with contextlib.suppress(MqttError):
                link.publish(topic, payload, qos=qos, retain=True)
        report()

    link.on_connect = connected
    link.on_disconnect = report
    handlers: dict[str, bool] = {}
    forwarder = threading.Thread(target=forward, name="forward", daemon=True)
    forwarder.start()
    link.start()
    try:
        while not done.is_set():
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if msg[0] == "stop":
                break
            if msg[0] == "sub":
                _, topic_filter, qos = msg
                if topic_filter not in handlers:
                    handlers[topic_filter] = True
                    # nothing the dashboard subscribes to is larger than an event
                    link.subscribe(topic_filter, on_message, qos=qos,
                                   max_payload=MAX_EVENT_BYTES)
            elif msg[0] == "unsub":
                if handlers.pop(msg[1], None):
                    link.unsubscribe(msg[1])
            elif msg[0] == "skip":
                skip[0] = frozenset(msg[1])
            elif msg[0] == "pub":
                _, topic, payload, qos, retain = msg
                if retain:
                    with retained_lock:
                        retained[topic] = (payload, qos)
                with contextlib.suppress(MqttError):  # retained: sent again on connect
                    link.publish(topic, payload, qos=qos, retain=retain)
    finally:
        done.set()
        with cond:
            cond.notify_all()
        link.stop()
        forwarder.join(2)


def _stats(link: MqttLink) -> tuple[Any, ...]:
    return (
        "stats",
        dict(link.stats),
        link.connected.is_set(),
        link.last_error,
        link.pending_subs,
        link.filters,
    )
