"""The publisher: sends journal events to the broker in seq order and prunes what is safe.

One thread owns all publisher state. Everything that happens elsewhere (a new event committed, a
PUBACK, a (re)connect, a dashboard ack or resend request) is posted to its inbox, so no lock is
ever held across a call into the MQTT client (whose network thread calls us back while holding
its own locks).

Delivery. The publisher reads committed rows from the journal (a separate SQLite reader, so it
never waits for a commit's fsync) and hands them to the link strictly in seq order, at most
``window`` not yet PUBACKed at a time, remembering mid -> seq. ``delivered`` is the highest seq
below which the broker has PUBACKed everything. When the connection drops, the messages already
handed over stay in the client, which re-sends them, in order, right after the next CONNACK; the
publisher hands over nothing new until those are PUBACKed (so the wire stays in seq order), then
continues from its cursor: together this resumes from the lowest seq not PUBACKed. (If they are
not all PUBACKed within ``RESUME_WAIT_S`` of the reconnect, it carries on regardless: liveness
over order, counted in ``resume_timeouts``.)

``delivered`` is written to the journal every 1,000 events or once a second (and at stop), so
after a crash or SIGKILL the publisher restarts from the recorded mark and re-sends at most
about that many events: duplicates are possible (the dashboard drops them by (node, seq)), loss
is not.

Ack and prune. The dashboard publishes, retained on ``.../ack``, a signed ack
(``controller.receipts``): the highest contiguous seq it stored, the hash it stored at that seq
and a counter. The journal takes it only if the signer is pinned (``trusted``), it is addressed
to this node, its counter is newer, the seq is not beyond the head and the hash is the one this
journal wrote at that seq (``Journal.accept_receipt``); rows with seq < N that are older than
``retention_days`` are then pruned every ``prune_interval_s``: acknowledged rows stay that long,
so a dashboard rebuilt from the night's backup (``secroom recover``) can ask again for what its
lost database had stored since. Until any ack exists, only rows both PUBACKed by the broker and
older than ``retention_days`` are pruned. The head row is never pruned (seq continuity).

Resend. A signed ``{"from": a, "to": b}`` on ``.../resend`` re-publishes the stored rows of that
range (clamped to ``resend_max`` rows and to what was already sent), ahead of new events, within
the same window; at most ``RESEND_BURST`` requests are taken per ``RESEND_PERIOD_S``, the rest
are counted (``resend_throttled``) and dropped. A receipt refused for any reason is counted
(``acks_refused``, ``resends_refused``, and ``refused.<reason>``), handed to ``on_refused`` (the
runtime journals it, so the dashboard raises it) and ignored: nothing stored is touched.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controller.envelope import TOPIC_ROOT, format_ts
from controller.journal import Journal, JournalError
from controller.mqtt import MqttError, MqttLink
from controller.receipts import ReceiptRefused, open_ack, open_resend

DELIVERED_SAVE_S = 1.0
DELIVERED_SAVE_EVERY = 1000
RESUME_WAIT_S = 5.0
READ_CHUNK = 500
RESEND_BURST = 30  # resend requests taken per period; more is a dashboard bug or an attack
RESEND_PERIOD_S = 60.0
RECEIPTS_QUEUED = 256  # acks and resend requests waiting for the publisher thread, at most

OnRefused = Callable[[str, str], None]  # (what: "ack" | "resend", reason)


def prune_mark(*, ack: int, delivered: int, first_recent: int | None) -> int:
    """Seq below which journal rows may be deleted: below the first event still inside the
    retention period, and never beyond the dashboard's ack or, without one, beyond what the
    broker acknowledged (``delivered``).
    """
    if ack > 0:
        return ack if first_recent is None else min(ack, first_recent)
    limit = delivered + 1
    return limit if first_recent is None else min(limit, first_recent)


def retention_cutoff(now: datetime, days: int) -> str:
    return format_ts(now - timedelta(days=days))


def resend_range(first: int, last: int, *, sent: int, resend_max: int) -> tuple[int, int] | None:
    """The rows actually re-published for a request: within what was sent, at most resend_max."""
    top = min(last, sent, first + resend_max - 1)
    return None if first > top else (first, top)


class DeliveryMark:
    """Contiguous PUBACK mark: the highest seq with every seq at or below it acknowledged."""

    def __init__(self, delivered: int) -> None:
        self.delivered = delivered
        self._above: set[int] = set()

    def acked(self, seq: int) -> bool:
        """Record one PUBACK; True when ``delivered`` moved."""
        if seq <= self.delivered:
            return False
        if seq != self.delivered + 1:
            self._above.add(seq)
            return False
        self.delivered = seq
        while self.delivered + 1 in self._above:
            self.delivered += 1
            self._above.discard(self.delivered)
        return True


class Publisher:
    def __init__(
        self,
        journal: Journal,
        link: MqttLink,
        *,
        window: int = 1000,
        resend_max: int = 10000,
        retention_days: int = 30,
        prune_interval_s: float = 60.0,
        clock: Callable[[], datetime],
        trusted: tuple[Ed25519PublicKey, ...] = (),
        on_refused: OnRefused | None = None,
    ) -> None:
        self.journal = journal
        self.trusted = trusted  # the dashboard's keys (the policy signer's), pinned by config
        self.on_refused = on_refused
        self.link = link
        self.window = window
        self.resend_max = resend_max
        self.retention_days = retention_days
        self.prune_interval_s = prune_interval_s
        self._clock = clock
        self._topic_root = f"{TOPIC_ROOT}/{journal.site}/{journal.node}/events/"
        # Rows below the first stored one were pruned, which needs a broker PUBACK or a dashboard
        # ack: all of them count as delivered.
        start = max(journal.delivered, journal.ack, journal.first() - 1, 0)
        self._mark = DeliveryMark(start)
        self._next = start + 1
        self._inflight: dict[int, int] = {}
        self._resends: deque[list[int]] = deque()
        self._inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._delivered_cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved_at = self._pruned_at = time.monotonic()
        self._resuming = False
        self._resume_seen: float | None = None
        self._resend_times: deque[float] = deque()
        self._receipts_lock = threading.Lock()
        self._receipts_queued = 0
        self._overflow_ack: bytes | None = None  # the newest ack that found the queue full
        self.last_error: str | None = None
        self.last_refusal: str | None = None
        self.stats: dict[str, int] = dict.fromkeys(
            ("sent", "resent", "acks", "acks_repeated", "acks_refused", "resends_refused",
             "resends", "resends_repeated", "resend_clamped", "resend_throttled",
             "receipts_dropped", "pruned",
             "journal_errors", "errors", "resume_timeouts"), 0,
        )

    # -- called from any thread --------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="secroom-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(("wake",))
        if self._thread is not None:
            self._thread.join()
        self._save_delivered()

    def wake(self) -> None:
        self._inbox.put(("wake",))

    @property
    def alive(self) -> bool:
        """The publisher thread runs (the watchdog's test of a node's liveness)."""
        return self._thread is not None and self._thread.is_alive()

    def on_published(self, mid: int) -> None:
        self._inbox.put(("puback", mid))

    def on_connect(self) -> None:
        self._inbox.put(("wake",))

    def on_disconnect(self) -> None:
        self._inbox.put(("disconnect",))

    def on_ack_message(self, topic: str, payload: bytes) -> None:
        self._post_receipt("ack", payload)

    def on_resend_message(self, topic: str, payload: bytes) -> None:
        self._post_receipt("resend", payload)

    def _post_receipt(self, what: str, payload: bytes) -> None:
        """Queue a receipt for the publisher thread; beyond ``RECEIPTS_QUEUED`` waiting (a
        flood: each is a signature check), the rest are counted and dropped, except the newest
        ack, kept in one slot: acks are cumulative, so the last one to arrive (the genuine one
        after a flood) still prunes what the dashboard stored."""
        with self._receipts_lock:
            if self._receipts_queued >= RECEIPTS_QUEUED:
                if what != "ack":
                    self.stats["receipts_dropped"] += 1
                    return
                older, self._overflow_ack = self._overflow_ack, payload
                if older is not None:  # the slot's older ack is dropped; its wake-up is queued
                    self.stats["receipts_dropped"] += 1
                    return
                self._inbox.put(("overflow_ack",))
                return
            self._receipts_queued += 1
        self._inbox.put((what, payload))

    def _refused(self, what: str, exc: ReceiptRefused) -> None:
        self.stats[f"{what}s_refused"] += 1
        key = f"refused.{exc.reason}"
        self.stats[key] = self.stats.get(key, 0) + 1
        self.last_refusal = f"{what}: {exc}"
        if self.on_refused is not None:
            try:
                self.on_refused(what, exc.reason)
            except Exception as err:  # the refusal is counted whatever happens to its event
                self.last_error = f"recording a refused {what}: {err!r}"

    @property
    def delivered(self) -> int:
        return self._mark.delivered

    def wait_delivered(self, seq: int, timeout: float) -> bool:
        with self._delivered_cond:
            return self._delivered_cond.wait_for(lambda: self._mark.delivered >= seq, timeout)

    def resend(self, first: int, last: int) -> None:
        """Re-publish the stored rows ``first..last``, as a dashboard's resend request does."""
        if first <= last:
            self._inbox.put(("resend_range", first, last))

    def wait_acked(self, seq: int, timeout: float) -> bool:
        """True once the dashboard acknowledged storing every seq <= ``seq`` (resend requests
        are answered meanwhile: they are handled on the publisher's own thread)."""
        with self._delivered_cond:
            return self._delivered_cond.wait_for(lambda: self.journal.ack >= seq, timeout)

    def health(self) -> dict[str, Any]:
        return {
            "head": self.journal.head()[0],
            "delivered": self._mark.delivered,
            "ack": self.journal.ack,
            "inflight": len(self._inflight),
            "last_error": self.last_error,
            "last_refusal": self.last_refusal,
            **self.stats,
        }

    # -- the publisher thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item: tuple[Any, ...] | None = self._inbox.get(timeout=0.5)
            except queue.Empty:
                item = None
            while item is not None:
                self._handle(*item)
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    item = None
            if self._stop.is_set():
                break
            try:
                self._pump()
                self._housekeeping()
            except JournalError as exc:  # counted, reported in health, retried on the next turn
                self.stats["journal_errors"] += 1
                self.last_error = str(exc)
            except Exception as exc:  # a bug must not silently stop delivery: count, retry
                self.stats["errors"] += 1
                self.last_error = f"publisher: {exc!r}"

    def _handle(self, what: str, a: Any = 0, b: int = 0) -> None:
        if what == "puback":
            seq = self._inflight.pop(a, None)
            if seq is not None and self._mark.acked(seq):
                with self._delivered_cond:
                    self._delivered_cond.notify_all()
        elif what == "disconnect":
            self._resuming, self._resume_seen = bool(self._inflight), None
        elif what in ("ack", "resend"):
            with self._receipts_lock:
                self._receipts_queued -= 1
            if what == "ack":
                self._take_ack(a)
            else:
                self._take_resend(a)
            with self._delivered_cond:  # wait_acked() waits on the same condition
                self._delivered_cond.notify_all()
        elif what == "resend_range":  # asked by this node's own tools (``resend``)
            self._queue_resend(a, b)
        elif what == "overflow_ack":
            with self._receipts_lock:
                payload, self._overflow_ack = self._overflow_ack, None
            if payload is not None:  # else an earlier wake-up took it
                self._take_ack(payload)
                with self._delivered_cond:
                    self._delivered_cond.notify_all()

    def _take_ack(self, payload: bytes) -> None:
        j = self.journal
        try:
            ack = open_ack(payload, self.trusted, site=j.site, node=j.node)
            fresh = j.accept_receipt("ack", ack.counter, ack=(ack.seq, ack.hash))
        except ReceiptRefused as exc:
            self._refused("ack", exc)
            return
        except JournalError as exc:  # the mark could not be recorded: nothing is pruned
            self.stats["journal_errors"] += 1
            self.last_error = str(exc)
            return
        self.stats["acks" if fresh else "acks_repeated"] += 1

    def _take_resend(self, payload: bytes) -> None:
        j = self.journal
        try:
            req = open_resend(payload, self.trusted, site=j.site, node=j.node)
            if not j.accept_receipt("resend", req.counter):
                self.stats["resends_repeated"] += 1  # the same request again: queued once
                return
        except ReceiptRefused as exc:
            self._refused("resend", exc)
            return
        except JournalError as exc:
            self.stats["journal_errors"] += 1
            self.last_error = str(exc)
            return
        now = time.monotonic()
        while self._resend_times and now - self._resend_times[0] >= RESEND_PERIOD_S:
            self._resend_times.popleft()
        if len(self._resend_times) >= RESEND_BURST:
            self.stats["resend_throttled"] += 1
            return
        self._resend_times.append(now)
        self.stats["resends"] += 1
        self._queue_resend(req.first, req.last)

    def _queue_resend(self, first: int, last: int) -> None:
        rng = resend_range(first, last, sent=self._next - 1, resend_max=self.resend_max)
        if rng is None or rng[1] < last:
            self.stats["resend_clamped"] += 1
        if rng is not None:
            self._resends.append([rng[0], rng[1]])

    def _pump(self) -> None:
        """Hand rows to the link: asked-for resends first, then new events, within the window."""
        if self._resuming and not self._resumed():
            return
        budget = self.window - len(self._inflight)
        try:
            while budget > 0 and self._resends and self.link.connected.is_set():
                rng = self._resends[0]
                rows = self.journal.raw(rng[0], rng[1], limit=min(budget, READ_CHUNK))
                for seq, kind, body in rows:
                    self._inflight[self.link.publish(self._topic_root + kind, body)] = seq
                    self.stats["resent"] += 1
                    budget -= 1
                    rng[0] = seq + 1
                if not rows or rng[0] > rng[1]:
                    self._resends.popleft()
            head = self.journal.head()[0]
            while budget > 0 and self._next <= head and self.link.connected.is_set():
                rows = self.journal.raw(self._next, head, limit=min(budget, READ_CHUNK))
                if not rows:
                    break
                for seq, kind, body in rows:
                    self._inflight[self.link.publish(self._topic_root + kind, body)] = seq
                    self.stats["sent"] += 1
                    budget -= 1
                    self._next = seq + 1
        except MqttError:
            return  # not connected: the rows stay in the journal; on_connect wakes us again

    def _resumed(self) -> bool:
        """After a reconnect: have the messages the client re-sent all been PUBACKed?"""
        if not self._inflight:
            self._resuming = False
        elif self.link.connected.is_set():
            now = time.monotonic()
            self._resume_seen = self._resume_seen or now
            if now - self._resume_seen >= RESUME_WAIT_S:
                self.stats["resume_timeouts"] += 1
                self._resuming = False
        return not self._resuming

    def _housekeeping(self) -> None:
        now = time.monotonic()
        behind = self._mark.delivered - self.journal.delivered
        if behind >= DELIVERED_SAVE_EVERY or (behind and now - self._saved_at >= DELIVERED_SAVE_S):
            self._save_delivered()
            self._saved_at = now
        if now - self._pruned_at >= self.prune_interval_s:
            self._pruned_at = now
            self.prune_now()

    def _save_delivered(self) -> None:
        if self._mark.delivered > self.journal.delivered:
            self.journal.set_delivered(self._mark.delivered)

    def prune_now(self) -> int:
        """Delete what retention and the ack allow; returns rows deleted."""
        self._save_delivered()
        cutoff = retention_cutoff(self._clock(), self.retention_days)
        below = prune_mark(
            ack=self.journal.ack,
            delivered=self.journal.delivered,
            first_recent=self.journal.first_seq_since(cutoff),
        )
        deleted = self.journal.prune(below=below)
        self.stats["pruned"] += deleted
        return deleted
