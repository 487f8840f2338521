"""The node runtime: what every node (door gateway, USB agent, backup job) runs to emit events.

``emit`` writes the event to the journal first and returns only once it is committed to disk;
then it wakes the publisher, which delivers it whenever the broker is reachable. Concurrent
``emit`` calls share commits (group commit): a caller that finds fewer than two commits under
way becomes a leader and takes every request queued so far into one transaction (one fsync);
the others wait for that commit, or lead the next one. Two leaders let one batch be sealed and
signed while the previous one is being fsynced; the journal keeps their commits in seal order.
Each caller still returns only after its own event is durable. ``emit_many`` puts several
events in one request. Bad input (a kind not registered in ``controller.events.KINDS``, data
that is not that kind's model, or too big) raises ``EventRejected`` to its caller only: a kind or
model error is caught in the caller's thread, and a batch that fails on data is re-committed
request by request, so one bad call never costs anyone else's events. A full disk raises
``JournalFull`` to every caller whose events were in that commit (or sealed on top of it), and
nothing already stored is lost.

State: ``secroom/v1/{site}/{node}/state`` is retained. The last will (set before connecting)
publishes ``{"state":"offline"}``; every (re)connect publishes ``{"state":"online", ...}`` with
the last health given to ``publish_state``; ``stop`` publishes offline before disconnecting.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from controller.compat import ANNOUNCE_KEY, announcement
from controller.envelope import ClockState, Event, canonical_json, format_ts, now_utc, topic_for
from controller.events import NodeReceiptRefused, NodeStarted, NodeStopped, payload_error
from controller.journal import EventRejected, Journal, JournalError, check_shape
from controller.keys import load_private, load_public, previous_path, public_b64
from controller.mqtt import MqttError, MqttLink, MqttSettings
from controller.publisher import Publisher
from controller.receipts import MAX_RECEIPT_BYTES

OFFLINE = canonical_json({"state": "offline"})
STOP_FLUSH_S = 2.0
MAX_LEADERS = 2  # one batch sealing while the previous one is committed (see Journal)
REFUSAL_EVERY_S = 60.0

class RuntimeSettings(BaseModel, extra="forbid"):
    node: str
    site: str
    journal: Path
    key_file: Path
    retention_days: int = 30
    prune_interval_s: float = 60
    resend_max: int = 10000
    mqtt: MqttSettings = MqttSettings()
    # the dashboard's public keys (the policy signer's): acks and resend requests must be
    # signed by one of them (controller.receipts)
    trusted_keys: list[Path] = []


class _Request:
    __slots__ = ("items", "events", "error", "taken", "done")

    def __init__(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        self.items = items
        self.events: list[Event] = []
        self.error: Exception | None = None
        self.taken = False  # in a leader's batch
        self.done = False


def _as_dict(kind: str, data: BaseModel) -> dict[str, Any]:
    """The JSON object of ``data``, if it is the model registered for ``kind``."""
    refused = payload_error(kind, data)
    if refused is not None:
        raise EventRejected(refused)
    out = data.model_dump(mode="json")
    check_shape(kind, out)
    return out


class NodeRuntime:
    journal: Journal
    publisher: Publisher

    def __init__(
        self,
        settings: RuntimeSettings,
        *,
        clock: Callable[[], datetime] = now_utc,
        clock_state: Callable[[], ClockState] = lambda: "unsynced",
    ) -> None:
        self.settings = settings
        self.boot = uuid.uuid4().hex[:16]
        self._clock = clock
        self._clock_state = clock_state
        self.state_topic = topic_for(settings.site, settings.node, "state")
        self.link = MqttLink(
            settings.mqtt,
            client_id=f"secroom-{settings.site}-{settings.node}",
            will=(self.state_topic, OFFLINE, True),
        )
        self._health: dict[str, Any] = {}
        # the node's policy store's status (version, floor, expiry, scope) for the state message
        self._policy_status: Callable[[], dict[str, Any]] | None = None
        self.public_key = ""  # base64url of the node's Ed25519 public key, known after start()
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._leaders = 0
        self._running = False
        self._refusals: dict[tuple[str, str], int] = {}
        self._refusal_at: dict[tuple[str, str], float] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        key = load_private(s.key_file)
        self.public_key = public_b64(key.public_key())
        prev = previous_path(s.key_file)  # `secroom keys rotate` left the old key: hand over
        self.journal = Journal(s.journal, node=s.node, site=s.site, key=key, boot=self.boot,
                               previous_key=load_private(prev) if prev.exists() else None)
        self.publisher = Publisher(
            self.journal,
            self.link,
            window=s.mqtt.max_inflight,
            resend_max=s.resend_max,
            retention_days=s.retention_days,
            prune_interval_s=s.prune_interval_s,
            clock=self._clock,
            trusted=tuple(load_public(k) for k in s.trusted_keys),
            on_refused=self._receipt_refused,
        )
        self.link.on_connect = self._on_connect
        self.link.on_published = self.publisher.on_published
        self.link.on_disconnect = self.publisher.on_disconnect
        self.link.subscribe(topic_for(s.site, s.node, "ack"), self.publisher.on_ack_message,
                            max_payload=MAX_RECEIPT_BYTES)
        self.link.subscribe(topic_for(s.site, s.node, "resend"), self.publisher.on_resend_message,
                            max_payload=MAX_RECEIPT_BYTES)
        self._running = True
        head = self.journal.head()[0]
        try:
            self.emit("node.started", NodeStarted(boot=self.boot, resumed_after=head))
            self.publisher.start()
            self.link.start()  # raises only for bad local MQTT settings (password, TLS files)
        except Exception:
            self._running = False
            self.publisher.stop()
            self.journal.close()
            raise

    def receipt_refused(self, what: str, reason: str) -> None:
        """A refused signed command (an enrol command, controller.card_enrol): as below."""
        self._receipt_refused(what, reason)

    def _receipt_refused(self, what: str, reason: str) -> None:
        """A refused ack or resend request (publisher thread): journaled, at most once a minute
        per kind of refusal with the count since the last one, so the dashboard raises it and a
        flood of forgeries cannot flood the journal."""
        key = (what, reason)
        self._refusals[key] = self._refusals.get(key, 0) + 1
        now = time.monotonic()
        if now - self._refusal_at.get(key, -REFUSAL_EVERY_S) < REFUSAL_EVERY_S:
            return
        count, self._refusals[key], self._refusal_at[key] = self._refusals[key], 0, now
        self.emit("node.receipt_refused", NodeReceiptRefused(what=what, reason=reason,
                                                              count=count))
        self._send_online()

    def stop(self) -> None:
        """Record node.stopped, give the broker a moment to take the rest, go offline."""
        if not self._running:
            return
        try:
            last = self.emit("node.stopped", NodeStopped(boot=self.boot)).seq
            if self.link.connected.is_set():  # offline, the journal keeps them for next start
                self.publisher.wait_delivered(last, STOP_FLUSH_S)
        finally:
            self._running = False
            if self.link.connected.is_set():
                # Queued before DISCONNECT on the same connection, so the broker keeps it; if the
                # connection just dropped, the broker publishes the will (offline) instead.
                with contextlib.suppress(MqttError):
                    self.link.publish(self.state_topic, OFFLINE, qos=1, retain=True)
            self.publisher.stop()
            self.link.stop()
            with self._cond:  # let a commit already running finish before closing the file
                self._cond.wait_for(lambda: not self._leaders)
                self.journal.close()

    # -- events ------------------------------------------------------------------------------

    def emit(self, kind: str, data: BaseModel) -> Event:
        """Journal one event (durable when this returns), then wake the publisher."""
        return self._commit([(kind, _as_dict(kind, data))])[0]

    def emit_many(self, items: Sequence[tuple[str, BaseModel]]) -> list[Event]:
        """Journal several events in one commit, in order."""
        return self._commit([(kind, _as_dict(kind, data)) for kind, data in items])

    def _commit(self, items: list[tuple[str, dict[str, Any]]]) -> list[Event]:
        if not self._running:
            raise JournalError("the node runtime is not running; call start() first")
        req = _Request(items)
        with self._cond:
            self._pending.append(req)
            while not req.done and (req.taken or self._leaders >= MAX_LEADERS):
                self._cond.wait()
            if req.done:
                return self._result(req)
            self._leaders += 1
            batch, self._pending = self._pending, []
            for r in batch:
                r.taken = True
        try:
            self._store(batch)
        finally:
            with self._cond:
                for r in batch:
                    r.done = True
                self._leaders -= 1
                self._cond.notify_all()
        self.publisher.wake()
        return self._result(req)

    def _store(self, batch: list[_Request]) -> None:
        now, clock = self._clock(), self._clock_state()
        try:
            events = self.journal.append_many(
                [item for r in batch for item in r.items], now=now, clock=clock
            )
        except EventRejected as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            for r in batch:  # find the culprit; everyone else's events are still stored
                self._store([r])
            return
        except Exception as exc:  # JournalError, or a bug: every waiter must get an answer
            for r in batch:
                r.error = exc
            return
        at = 0
        for r in batch:
            r.events = events[at : at + len(r.items)]
            at += len(r.items)

    @staticmethod
    def _result(req: _Request) -> list[Event]:
        if req.error is not None:
            raise req.error
        return req.events

    # -- MQTT side ---------------------------------------------------------------------------

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None], *,
                  max_payload: int | None = None) -> None:
        self.link.subscribe(topic_filter, handler, max_payload=max_payload)

    def publish_state(self, health: Mapping[str, Any]) -> None:
        """Publish (retained) online state with ``health``; kept and re-sent on every connect."""
        self._health = dict(health)
        if self.link.connected.is_set():
            self._send_online()

    def follow_policy(self, status: Callable[[], dict[str, Any]]) -> None:
        """Report ``status()`` (a PolicyStore's) as ``policy`` in every state message."""
        self._policy_status = status
        self.refresh_state()

    def refresh_state(self) -> None:
        """Re-send the state message now (e.g. a policy was applied)."""
        if self.link.connected.is_set():
            self._send_online()

    def _on_connect(self) -> None:
        self.publisher.on_connect()
        self._send_online()

    def _send_online(self) -> None:
        payload = {
            "state": "online",
            "public_key": self.public_key,  # the dashboard enrols (pending -> approved) by it
            ANNOUNCE_KEY: announcement(),  # what it runs (controller.compat)
            "boot": self.boot,
            "ts": format_ts(self._clock()),
            "health": self._health,
            "receipts": {k: self.publisher.stats[k] for k in ("acks", "acks_refused",
                                                              "resends_refused")}
            | {"last_refusal": self.publisher.last_refusal},
        }
        rotation = self.journal.rotation
        if rotation is not None:  # the old key's signed handover to this one (controller.keys)
            payload["key_rotation"] = rotation
        if self._policy_status is not None:
            payload["policy"] = self._policy_status()
        with contextlib.suppress(MqttError):  # if disconnected, the next on_connect re-sends it
            self.link.publish(self.state_topic, canonical_json(payload), qos=1, retain=True)

    def wait_delivered(self, seq: int, timeout: float) -> bool:
        """True once the broker has PUBACKed every seq <= ``seq``."""
        return self.publisher.wait_delivered(seq, timeout)

    def wait_acked(self, seq: int, timeout: float) -> bool:
        """True once the dashboard acknowledged storing every seq <= ``seq``."""
        return self.publisher.wait_acked(seq, timeout)

    def alive(self) -> bool:
        """Started, not stopped, and its publisher thread runs (what the watchdog pings on)."""
        return self._running and self.publisher.alive

    def health(self) -> dict[str, Any]:
        return {
            "connected": self.link.connected.is_set(),
            "link": dict(self.link.stats),
            "link_error": self.link.last_error,
            "publisher": self.publisher.health(),
            "numbers_removed": self.journal.numbers_removed,  # see controller.numguard
        }
