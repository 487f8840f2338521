"""The MQTT consumer: queue from paho's thread, parse on one thread, store on another.

paho's thread only enqueues (bounded: when full it waits, which back-pressures the broker).
The parse thread takes up to ``batch_max`` messages and parses them (``IngestCore.prepare``)
while the worker stores the batch before: the database driver lets go of the GIL while SQLite
or PostgreSQL works, so the two overlap in part (3 to 11 % more events/s in four paired bench
runs). The worker stores a batch in one transaction, commits, then publishes the acks
(retained) and resend requests and feeds the bus. A failing DB keeps the batch and retries; a
payload that makes our code fail on its own is counted ``internal_error`` and not acked (the
node re-sends it). Every ``tick_s`` the worker re-asks for open gaps and raises gap anomalies;
after the link connects (the first time too), and every ``catch_up_interval_s``, it asks every
approved node for what follows its ack (messages in flight on a dropped clean session are gone,
and a lost tail leaves no gap to notice; a node with nothing unacked sends nothing).

Signatures (``verify_mode``): "chain" (the default) authenticates every event before it is
stored by its hash chain up to a verified signature (one Ed25519 check per run of a node's
consecutive events in a batch), then checks each remaining signature after the commit in a
low-priority worker process (``SignatureAudit``; a bad one raises ``bad_signature``): one
Ed25519 check costs about as much as everything else done for an event, so checking each one
first ("every") ingests at about 60 % of chain's rate (BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from controller.envelope import MAX_EVENT_BYTES, TOPIC_ROOT, now_utc, topic_for
from controller.mqtt import MqttError, MqttLink
from controller.receipts import Ack, Resend, sign_ack, sign_resend
from dashboard.bridge_config import bridge_link_topic
from dashboard.bus import Bus
from dashboard.ingest import compat
from dashboard.ingest.core import BatchResult, IngestCore, Prepared, ResendRequest
from dashboard.ingest.inbox import Inbox
from dashboard.ingest.leased import LeasedTopics
from dashboard.ingest.link_process import LinkProcess
from dashboard.ingest.marks import next_counter
from dashboard.ingest.verify import SignatureAudit, SignatureVerifier
from dashboard.models.nodes import Node
from dashboard.replicas.leases import IngestLeases, LeaseChange, node_of

CATCH_UP_SPAN = 10_000  # a node clamps a resend to what it has sent (and to its resend_max)


class _Stopping(Exception):
    """The consumer is stopping while the database is unavailable: the batch stays un-acked."""


class IngestConsumer:
    def __init__(
        self,
        sessionmaker: sessionmaker[Session],
        link: MqttLink | LinkProcess,
        *,
        site: str,
        bus: Bus,
        gap_timeout_s: float = 30,
        clock: Callable[[], datetime] = now_utc,
        batch_max: int | None = None,
        batch_wait_s: float = 0.02,
        ack_interval_s: float = 0.25,
        queue_max: int = 100_000,
        queue_max_bytes: int = 64 * 1024 * 1024,
        audit_processes: int | None = None,
        verify_mode: str = "chain",
        max_payload: int = MAX_EVENT_BYTES,
        tick_s: float = 1.0,
        resend_interval_s: float = 5.0,
        catch_up_interval_s: float = 60.0,
        receipt_key: Ed25519PrivateKey | None = None,
        leases: IngestLeases | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        # acks and resend requests are signed with the dashboard's key (the policy signer's,
        # which the nodes pin); without one a throwaway key: no node will act on them
        self.receipt_key = receipt_key or Ed25519PrivateKey.generate()
        self.link = link
        self.site = site
        self.bus = bus
        self.gap_timeout_s = gap_timeout_s
        self.clock = clock
        if batch_max is None:  # messages per transaction, at most
            with sessionmaker() as session:  # no connection made
                postgres = session.get_bind().dialect.name == "postgresql"
            # PostgreSQL: each batch costs a dozen round trips whatever its size, so bigger
            # batches pay: +13 % events/s in three paired runs fed straight from memory, -3,
            # +10 and +12 % in three through the broker; SQLite had no such gain (-6 %)
            batch_max = 6000 if postgres else 2000
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.ack_interval_s = ack_interval_s
        self._acks_sent_at = 0.0
        self.tick_s = tick_s
        if audit_processes is None:  # one core for this process, the others audit
            audit_processes = min(2, max(0, (os.cpu_count() or 1) - 1))
        self.verifier = SignatureVerifier(verify_mode)
        self.audit = SignatureAudit(audit_processes)
        self.core = IngestCore(
            site=site,
            verifier=self.verifier,
            max_payload=max_payload,
            resend_interval_s=resend_interval_s,
        )
        self._queue: Inbox[tuple[str, bytes]] = Inbox(queue_max, queue_max_bytes,
                                                         lambda m: len(m[1]))
        self._ready: Inbox[tuple[list[tuple[str, bytes]], Prepared | None]] = Inbox(2)
        self._preparer: threading.Thread | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._received = 0
        self._handled = 0
        self._unsent_acks: dict[str, bytes] = {}
        self.batches = 0
        self.catch_ups = 0
        self._connects = 0
        self._caught_up_at = time.monotonic()
        self.catch_up_interval_s = catch_up_interval_s
        self._bridge_up = threading.Event()
        self._approved: set[str] | None = None
        self.db_errors = 0
        self.last_error: str | None = None
        # replicas (dashboard.replicas): subscribed to the events of the nodes this replica
        # holds the lease of (ingest.leased); what comes of another's is dropped un-acked
        self.leases = leases
        self.topics: LeasedTopics | None = None
        self.not_leased = 0
        self._gained: set[str] = set()
        self._gained_lock = threading.Lock()
        if leases is not None:
            self.topics = LeasedTopics(link, site, on_message=self._on_message,
                                       on_messages=self._on_messages,
                                       max_payload=self.core.preparer.max_payload)
            leases.add_listener(self._leases_changed)

    @property
    def counters(self) -> dict[str, int]:
        """Stored, duplicate, state and rejected counts by reason (see ingest.counters)."""
        snap = self.core.counters.snapshot()
        snap["received"] = self._received
        snap["queued"] = len(self._queue)
        if self.leases is not None:
            snap["not_leased"] = self.not_leased + int(self.link.stats.get("not_leased", 0))
        return snap

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        # nodes approved from now on are new (if the database is down, the first tick looks)
        with contextlib.suppress(OperationalError, DBAPIError), self.sessionmaker() as session:
            self._approved = set(session.scalars(select(Node.name).where(
                Node.key_status == "approved", Node.site == self.site)))
        if self.topics is not None:  # a replica: its leased nodes' topics, subscribed before
            self.topics.start()  # the first tick asks the nodes gained for a re-send
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()
        self._preparer = threading.Thread(
            target=self._prepare_loop, name="ingest-parse", daemon=True
        )
        self._preparer.start()
        # many sites: the site's bridge coming back asks for a catch-up at the next tick
        self.link.subscribe(bridge_link_topic(self.site), self._on_bridge_link)
        if self.topics is not None:
            return
        filters = [f"{TOPIC_ROOT}/{self.site}/+/events/#", f"{TOPIC_ROOT}/{self.site}/+/state"]
        if isinstance(self.link, LinkProcess):  # batches straight into the inbox
            self.link.subscribe_many(filters, self._on_messages)
        else:
            for topic_filter in filters:
                self.link.subscribe(topic_filter, self._on_message,
                                    max_payload=self.core.preparer.max_payload)

    def stop(self) -> None:
        self._stop.set()
        if self._preparer is not None:
            self._queue.wake()
            self._preparer.join(30)
            self._preparer = None
        if self._thread is not None:
            self._ready.wake()
            self._thread.join(30)
            self._thread = None
        for batch, _ in self._ready.take(self._ready.maxsize, 0, 0):
            self._done(len(batch))  # parsed but not stored: not acked, the nodes re-send
        self.audit.close()

    def wait_idle(self, timeout: float) -> bool:
        """Block until everything received so far has been processed (for tests and benches)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._handled < self._received:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def wait_processed(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` messages in total have been processed."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._handled < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    @property
    def processed(self) -> int:
        return self._handled

    def submit(self, topic: str, payload: bytes) -> None:
        """Enqueue one message as if it came from MQTT (the subscription handler)."""
        self._on_message(topic, payload)

    # -- paho's thread -----------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        if self.leases is not None and not self._leased(topic):
            self.not_leased += 1
            return
        with self._idle:
            self._received += 1
        if not self._queue.put((topic, payload), self._stop):
            self._done(1)  # stopping: not processed, not acked; the node will re-send it

    def _on_bridge_link(self, topic: str, payload: bytes) -> None:
        if payload.strip() == b"1":
            self._bridge_up.set()

    def _on_messages(self, items: list[tuple[str, bytes]]) -> None:
        if self.leases is not None:
            kept = [m for m in items if self._leased(m[0])]
            self.not_leased += len(items) - len(kept)
            items = kept
            if not items:
                return
        with self._idle:
            self._received += len(items)
        left = self._queue.put_many(items, self._stop)
        if left:
            self._done(left)  # stopping: as above

    # -- worker ------------------------------------------------------------------------------

    def _prepare_loop(self) -> None:
        """Parse the next batch while the worker stores the previous one (parsing needs no
        database, and the driver lets go of the GIL while SQLite or PostgreSQL works)."""
        while not self._stop.is_set():
            batch = self._queue.take(self.batch_max, 0.5, self.batch_wait_s)
            if not batch:
                continue
            try:
                prepared: Prepared | None = self.core.prepare(batch)
            except Exception as exc:  # our bug on some payload: the worker isolates it
                self.last_error = f"batch failed: {type(exc).__name__}: {exc}"
                prepared = None
            if not self._ready.put((batch, prepared), self._stop):
                self._done(len(batch))  # stopping: not processed, not acked

    def _run(self) -> None:
        next_tick = time.monotonic() + self.tick_s
        while not self._stop.is_set():
            wait = max(0.0, min(self.tick_s, next_tick - time.monotonic()))
            ready = self._ready.take(1, wait, 0)
            if ready and not self._stop.is_set():
                self._handle(*ready[0])
            elif ready:
                self._done(len(ready[0][0]))
            self._audit_results(wait=False)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.tick_s
                try:
                    self._tick()
                except Exception as exc:  # a bug of ours must not stop the consumer
                    self.last_error = f"tick failed: {type(exc).__name__}: {exc}"
        self._audit_results(wait=True)  # what was stored is audited before we go

    def _done(self, n: int) -> None:
        with self._idle:
            self._handled += n
            self._idle.notify_all()

    def _leased(self, topic: str) -> bool:
        assert self.leases is not None
        node = node_of(topic)
        return node is None or self.leases.holds(node)

    def _leases_changed(self, change: LeaseChange) -> None:
        """Leases changed (lease thread): subscriptions follow; the nodes gained are asked
        for what follows their acks at the next tick (after their SUBSCRIBE, on the same
        connection)."""
        assert self.topics is not None
        self.topics.changed(change)
        with self._gained_lock:
            self._gained |= change.gained

    def _fenced(self, session: Session, batch: list[tuple[str, bytes]],
                prepared: Prepared | None, now: datetime) -> BatchResult:
        """Store ``batch`` in ``session`` after checking, in it, this replica's leases: the
        messages of a node whose lease lapsed since they arrived are dropped un-acked."""
        assert self.leases is not None
        names = {n for n in map(node_of, (t for t, _ in batch)) if n is not None}
        ok = self.leases.fence(session, names)
        if names <= ok:
            return (self.core.process(session, batch, now) if prepared is None
                    else self.core.process_prepared(session, prepared, now))
        kept = [m for m in batch if (node_of(m[0]) or "") in ok or node_of(m[0]) is None]
        self.not_leased += len(batch) - len(kept)
        return self.core.process(session, kept, now)

    def _handle(self, batch: list[tuple[str, bytes]], prepared: Prepared | None = None) -> None:
        try:
            if self.leases is not None:
                result = self._with_retry(lambda s: self._fenced(s, batch, prepared, self.clock()))
            elif prepared is None:
                result = self._with_retry(lambda s: self.core.process(s, batch, self.clock()))
            else:
                result = self._with_retry(
                    lambda s: self.core.process_prepared(s, prepared, self.clock())
                )
        except _Stopping:
            self._done(len(batch))
            return
        except Exception as exc:  # our bug on some payload: isolate it
            self.last_error = f"batch failed: {type(exc).__name__}: {exc}"
            if len(batch) == 1:
                self.core.counters.add("internal_error")
                self._done(1)
                return
            for item in batch:
                self._handle([item])
            return
        self.batches += 1
        if result.unchecked:
            self.audit.submit(result.unchecked)
        self._after_commit(result)
        self._done(len(batch))

    def _audit_results(self, wait: bool) -> None:
        failures = self.audit.poll(wait)
        if not failures:
            return
        try:
            result = self._with_retry(
                lambda s: self.core.signature_failures(s, failures, self.clock())
            )
        except _Stopping:
            return
        except Exception as exc:
            self.last_error = f"signature audit failed: {type(exc).__name__}: {exc}"
            return
        self._after_commit(result)

    def _with_retry(self, work: Callable[[Session], BatchResult]) -> BatchResult:
        """Run ``work`` in one transaction; wait and retry while the database is unavailable."""
        delay = 0.2
        while True:
            try:
                with self.sessionmaker() as session:
                    result = work(session)
                    session.commit()
                    return result
            except (OperationalError, DBAPIError) as exc:
                if not isinstance(exc, OperationalError) and not exc.connection_invalidated:
                    raise
                self.db_errors += 1
                self.last_error = f"database unavailable: {exc.orig or exc}"
                if self._stop.wait(delay):
                    raise _Stopping from exc
                delay = min(delay * 2, 5.0)

    def _after_commit(self, result: BatchResult) -> None:
        for node, mark in result.acks.items():
            self._unsent_acks[node] = sign_ack(self.receipt_key, Ack(
                self.site, node, mark.seq, mark.hash, mark.counter))
        # acks are exact (only committed seqs) but, under load, at most one per node per
        # ack_interval_s: with an empty queue they go out at once
        now = time.monotonic()
        if not len(self._queue) or now - self._acks_sent_at >= self.ack_interval_s:
            self._acks_sent_at = now
            self._flush_acks()
        for req in result.resends:
            self._send_resend(req)
        for topic, data in result.messages:
            self.bus.publish(topic, data)  # type: ignore[arg-type]

    def _flush_acks(self) -> None:
        for node, blob in list(self._unsent_acks.items()):
            if self.leases is not None and node not in self.leases.held:
                # its new holder acks (with a higher counter): an older retained ack from
                # here would only be refused by the node as a replay
                self._unsent_acks.pop(node, None)
                continue
            try:
                self.link.publish(topic_for(self.site, node, "ack"), blob, qos=1, retain=True)
            except MqttError:
                return  # kept; retried on the next batch or tick
            if self._unsent_acks.get(node) is blob:
                del self._unsent_acks[node]

    def _send_resend(self, req: ResendRequest) -> None:
        blob = sign_resend(self.receipt_key, Resend(self.site, req.node, req.first, req.last,
                                                    req.counter))
        # if the link is down, the gap check re-asks every resend interval while the gap is open
        with contextlib.suppress(MqttError):
            self.link.publish(topic_for(self.site, req.node, "resend"), blob, qos=1)

    def _tick(self) -> None:
        self._flush_acks()
        connects = int(self.link.stats.get("connects", 0))
        now = time.monotonic()
        # messages in flight when a link dropped were lost with it; a lost tail leaves no gap to
        # notice, so ask for whatever follows each node's ack (usually nothing); if the database
        # cannot say, the next tick asks again. The first connect too: what the nodes sent while
        # this dashboard was stopped (or lost, and recovered from a backup) was on no session
        # A site's bridge that comes back (many sites) brings what its broker queued; what it
        # could not queue is in the nodes' journals and, with nothing sent since, no gap shows.
        bridge_back = self._bridge_up.is_set()
        self._bridge_up.clear()
        full = bridge_back or connects > self._connects or (
            now - self._caught_up_at >= self.catch_up_interval_s
        )
        if self._catch_up(only_new=not full):
            if full:
                self._caught_up_at = now
            self._connects = connects
        elif bridge_back:
            self._bridge_up.set()  # the next tick asks again
        try:
            held = None if self.leases is None else self.leases.held
            result = self._with_retry(
                lambda s: self.core.check_gaps(s, self.clock(), self.gap_timeout_s, only=held)
            )
        except _Stopping:
            return
        except Exception as exc:
            self.last_error = f"gap check failed: {type(exc).__name__}: {exc}"
            return
        self._after_commit(result)

    def _catch_up(self, only_new: bool = False) -> bool:
        """Ask every approved node for what follows its acked seq (after a reconnect, and now
        and then); with ``only_new``, just the nodes approved since the last look: what they
        sent while pending was refused, and an idle node would not send again by itself."""
        gained: set[str] = set()
        try:
            with self.sessionmaker() as session:  # this site's (one consumer per site)
                names = set(session.scalars(select(Node.name).where(
                    Node.key_status == "approved", Node.site == self.site)))
            known = self._approved
            if only_new and known is None:
                self._approved = names
                return True  # the first look: nothing to compare with
            ask = names if not only_new else names - (known or set())
            if self.leases is not None:  # only the nodes this replica stores; new leases too
                with self._gained_lock:
                    gained, self._gained = self._gained, set()
                ask = {n for n in ask | (gained & names) if self.leases.holds(n)}
            requests = []
            if ask:
                with self.sessionmaker() as session, session.begin():  # counters rise
                    now = self.clock()
                    for node in session.scalars(select(Node).where(Node.name.in_(sorted(ask)))):
                        if compat.problem_of(node) is not None:  # refused until upgraded
                            continue
                        node.resend_counter = next_counter(node.resend_counter, now)
                        requests.append(ResendRequest(
                            node.name, node.contiguous_seq + 1,
                            node.contiguous_seq + CATCH_UP_SPAN, node.resend_counter))
        except (OperationalError, DBAPIError) as exc:  # the next tick asks again
            with self._gained_lock:
                self._gained |= gained
            self.db_errors += 1
            self.last_error = f"database unavailable: {exc.orig or exc}"
            return False
        self._approved = names
        for req in requests:
            self._send_resend(req)
        if not only_new:
            self.catch_ups += 1
        return True

    def stats(self) -> dict[str, Any]:
        return {
            "counters": self.counters,
            "batches": self.batches,
            "db_errors": self.db_errors,
            "last_error": self.last_error,
            "bus_published": self.bus.published,
            "unsent_acks": json.dumps(sorted(self._unsent_acks)),
        }
