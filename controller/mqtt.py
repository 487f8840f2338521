"""The MQTT transport: the only module in secroom that imports paho-mqtt.

``MqttLink`` wraps one paho client (MQTT 3.1.1, clean session, callback API version 2) running
paho's own network thread (``loop_start``):

- ``start`` never raises for an absent or refusing broker: the thread keeps connecting with an
  exponential backoff between ``backoff_min_s`` and ``backoff_max_s`` and reports the state in
  ``connected``, ``stats`` and ``last_error``. It raises ``MqttError`` only for bad local
  configuration (an unreadable password file or TLS files).
- ``publish`` raises ``MqttError`` when the link is not connected, so the caller keeps the message
  (the journal is the queue, not this client's memory). A QoS 1 message that paho accepted keeps
  living inside paho until its PUBACK: if the connection drops first, paho re-sends it (same mid,
  DUP flag) right after the next CONNACK, in the order it was handed over. ``on_published(mid)``
  fires once per PUBACK.
- Subscriptions are remembered and renewed on every (re)connect; ``wait_subscribed`` returns
  once the broker SUBACKed all of them on the current connection; ``unsubscribe`` forgets one.
  Incoming messages are matched against the remembered filters (once per distinct topic: a
  dashboard replica holds a filter per leased node, hundreds); a handler that raises is counted
  in ``stats["handler_errors"]`` and never reaches paho's thread, and neither does an exception
  from our own hooks.
- The password is read from ``password_file`` when the link starts and is never kept in a model,
  a repr or a log line.
- Reads are buffered (``_BufferedClient``): paho reads a packet with three or four small
  ``recv`` calls, and at thousands of messages a second those system calls cost more than the
  parsing.
"""

from __future__ import annotations

import functools
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from pydantic import BaseModel, Field

Handler = Callable[[str, bytes], None]


@functools.lru_cache(maxsize=8192)
def topic_matches(topic_filter: str, topic: str) -> bool:
    """paho's filter match, cached: paho builds a matcher tree on every call, and a dashboard
    sees the same few hundred (node, kind) topics thousands of times a second."""
    return bool(paho.topic_matches_sub(topic_filter, topic))


class TlsSettings(BaseModel, extra="forbid"):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


class MqttSettings(BaseModel, extra="forbid"):
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password_file: Path | None = None  # the secret stays in the file; only the path is config
    tls: TlsSettings | None = None
    keepalive_s: int = 30
    backoff_min_s: float = 0.2
    backoff_max_s: float = 10.0
    # QoS 1 messages handed over and not yet PUBACKed: the publisher's window. paho itself is
    # left unlimited (its own limit rescans every queued message on each PUBACK).
    max_inflight: int = Field(default=1000, ge=1, le=65000)


class MqttError(Exception):
    """The broker cannot take a message now, or the link is badly configured."""


_COUNTERS = (
    "connects",
    "connect_failures",
    "disconnects",
    "published",
    "puback",
    "messages",
    "handler_errors",
    "callback_errors",
    "subscribe_failures",
    "oversized",
)


READ_SIZE = 65536
READ_PACKETS = 256  # packets handled per pass of paho's loop when they are already buffered
READ_PASS_S = 0.05  # and at most this long: then what the pass queued is written out


class _ReadBuffer:
    """A plain TCP socket whose reads come from a buffer filled ``READ_SIZE`` bytes at a time.

    paho reads each packet as the fixed header's byte, the remaining length byte by byte, then
    the body; here those small reads are slices of one big ``recv``. ``pending`` is how paho's
    loop learns, as it does for a TLS socket, that bytes are buffered, so it does not wait in
    ``select`` for data it already has. Everything else is the socket's own.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0
        self.send = sock.send  # the hot paths, without the __getattr__ detour
        self.fileno = sock.fileno

    def recv(self, bufsize: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            buf = self._sock.recv(max(bufsize, READ_SIZE))  # BlockingIOError: nothing yet
            if len(buf) <= bufsize:  # all of it asked for (b"" at end of stream)
                self._buf, self._pos = b"", 0
                return buf
            pos = 0
            self._buf = buf
        end = pos + bufsize
        self._pos = end
        return buf[pos:end]

    def pending(self) -> int:
        return len(self._buf) - self._pos

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _BufferedClient(paho.Client):
    """paho's client, tuned for a busy QoS 1 subscriber (the dashboard's link: thousands of
    messages a second, each answered by a PUBACK).

    - Reads go through ``_ReadBuffer`` (plain TCP; TLS sockets buffer already).
      ``_create_socket`` is paho's own seam for transports (its websocket wrapper goes in
      there, a socket-like object with ``pending`` as here).
    - ``loop_read`` goes on while packets are already in the read buffer. paho alone handles,
      per pass of its loop, as many packets as it has messages of its own in flight: on a
      subscriber, one. Each pass is a ``select`` call and its bookkeeping, then a write of
      that one PUBACK. Here a pass reads on until ``READ_PACKETS`` writes (PUBACKs) are
      queued, ``READ_PACKETS`` reads, or ``READ_PASS_S``, then what it queued goes out (the
      broker hears from the client all along: without those bounds a pass once grew to 20 s
      and 172,000 PUBACKs, and the broker dropped the link for silence). With 8 publishers
      into one counting subscriber, in five paired runs (the last two with those bounds):
      38-58 µs of the subscriber's CPU per message before, 22-28 after; the broker's 17-22
      µs per message before, 16-19 after; 14,400-22,000 messages/s before, 25,100-33,200
      after.

    Tests run the link against a real broker, including broker restarts and the QoS 1
    subscriber and publisher paths, so a paho release that changed these seams would show.
    (Skipping paho's wake-up byte for PUBACKs queued by the loop itself, and corking the
    socket around writes, were tried as well: no difference measured, so not kept.)
    """

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        if type(sock) is socket.socket:
            return _ReadBuffer(sock)
        return sock

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        deadline = time.monotonic() + READ_PASS_S
        for _ in range(READ_PACKETS - 1):
            sock = self._sock
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or sock is None:
                break
            pending = getattr(sock, "pending", None)
            if pending is None or pending() == 0:
                break
            # the PUBACKs (and any ping) queued so far go out before the pass grows long
            if len(self._out_packet) >= READ_PACKETS or time.monotonic() > deadline:
                break
            rc = super().loop_read(max_packets)
        return rc


class MqttLink:
    """One broker connection with reconnect, remembered subscriptions and PUBACK callbacks."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str,
        will: tuple[str, bytes, bool] | None = None,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.connected = threading.Event()
        self.on_connect: Callable[[], None] | None = None
        self.on_disconnect: Callable[[], None] | None = None
        self.on_published: Callable[[int], None] | None = None
        self.stats: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self.last_error: str | None = None
        self._subs: dict[str, tuple[int, list[Handler]]] = {}
        self._limits: dict[str, int] = {}  # topic filter -> largest payload its handlers take
        # topic -> the (payload limit, handlers) of the filters it matches; a new dict whenever
        # the filters change (read without the lock: see _paho_message)
        self._routes: dict[str, list[tuple[int | None, list[Handler]]]] = {}
        self._subs_lock = threading.Lock()
        # SUBSCRIBE mids not yet SUBACKed on this connection (and SUBACKs seen before the mid
        # was recorded); ``subscribed`` is set when none is pending.
        self._pending_subs: set[int] = set()
        self._early_subacks: set[int] = set()
        self._subscribed = threading.Condition(self._subs_lock)
        self._tokens = itertools.count(-1, -1)  # placeholders, never a real (positive) mid
        self._started = False
        self._client = _BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        self._client.suppress_exceptions = True
        self._client.max_inflight_messages_set(0)  # see MqttSettings.max_inflight
        self._client.max_queued_messages_set(0)
        # paho types these as int but only compares, doubles and sleeps on them.
        self._client.reconnect_delay_set(settings.backoff_min_s, settings.backoff_max_s)  # type: ignore[arg-type]
        if will is not None:
            topic, payload, retain = will
            self._client.will_set(topic, payload, qos=1, retain=retain)
        self._client.on_connect = self._paho_connect
        self._client.on_connect_fail = self._paho_connect_fail
        self._client.on_disconnect = self._paho_disconnect
        self._client.on_publish = self._paho_publish
        self._client.on_message = self._paho_message
        self._client.on_subscribe = self._paho_subscribed

    def __repr__(self) -> str:
        s = self.settings
        state = "connected" if self.connected.is_set() else "disconnected"
        return f"MqttLink({self.client_id!r} -> {s.host}:{s.port}, {state})"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        s = self.settings
        if s.username is not None:
            self._client.username_pw_set(s.username, self._read_password())
        if s.tls is not None:
            self._configure_tls(s.tls)
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self._client.loop_start()
        self._started = True

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def _read_password(self) -> str | None:
        path = self.settings.password_file
        if path is None:
            return None
        try:
            return path.read_text().rstrip("\r\n")
        except OSError as exc:
            raise MqttError(
                f"cannot read the MQTT password file {path}: {exc.strerror or exc}"
            ) from exc

    def _configure_tls(self, tls: TlsSettings) -> None:
        try:
            self._client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise MqttError(f"cannot load the MQTT TLS files ({tls.ca_file}): {exc}") from exc

    # -- publish / subscribe -----------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Hand one message to the broker connection; return its mid (see ``on_published``)."""
        if not self.connected.is_set():
            raise MqttError(
                f"not connected to the broker at {self.settings.host}:{self.settings.port}"
            )
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except (ValueError, TypeError) as exc:
            raise MqttError(f"cannot publish on {topic!r}: {exc}") from exc
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0
        ):
            # NO_CONN with QoS > 0: the connection dropped under us; paho keeps the message and
            # sends it right after the next CONNACK, so the mid stays valid.
            self.stats["published"] += 1
            return int(info.mid)
        reason = paho.error_string(info.rc)
        raise MqttError(f"broker link refused the message on {topic!r}: {reason}")

    def subscribe(self, topic_filter: str, handler: Handler, *, qos: int = 1,
                  max_payload: int | None = None) -> None:
        """Deliver messages matching ``topic_filter`` to ``handler`` (also after reconnects);
        with ``max_payload``, a larger message is counted (``oversized``) and not delivered."""
        self.check_filter(topic_filter)
        if max_payload is not None:
            self._limits[topic_filter] = max_payload
        with self._subscribed:
            _, handlers = self._subs.get(topic_filter, (qos, []))
            self._subs[topic_filter] = (qos, [*handlers, handler])
            self._routes = {}
            token = next(self._tokens) if self.connected.is_set() else None
            if token is not None:
                self._pending_subs.add(token)
        # Not connected: the next connect subscribes it (it reads the filters after setting
        # ``connected``, under the same lock, so no filter is missed).
        if token is not None:
            self._send_subscribe([(topic_filter, qos)], token)

    def unsubscribe(self, topic_filter: str) -> None:
        """Forget ``topic_filter`` and its handlers; the broker is told at once when connected
        (else the next connect simply does not renew it). A message the broker sent before it
        took the UNSUBSCRIBE is counted in ``messages`` and delivered to no handler."""
        with self._subscribed:
            if self._subs.pop(topic_filter, None) is None:
                return
            self._limits.pop(topic_filter, None)
            self._routes = {}
            connected = self.connected.is_set()
        if connected:
            self._client.unsubscribe(topic_filter)  # dropped with the connection: not renewed

    @property
    def subscriptions(self) -> list[str]:
        """The topic filters subscribed (or to be, on the next connect), sorted."""
        with self._subs_lock:
            return sorted(self._subs)

    @staticmethod
    def check_filter(topic_filter: str) -> None:
        """Raise MqttError unless ``topic_filter`` is a valid MQTT topic filter."""
        levels = topic_filter.split("/")
        if not topic_filter or any(
            ("#" in lvl and (lvl != "#" or i != len(levels) - 1)) or ("+" in lvl and lvl != "+")
            for i, lvl in enumerate(levels)
        ):
            raise MqttError(f"invalid MQTT topic filter {topic_filter!r}")

    @property
    def filters(self) -> int:
        """How many topic filters are subscribed (or will be on the next connect)."""
        with self._subs_lock:
            return len(self._subs)

    @property
    def pending_subs(self) -> int:
        """SUBSCRIBEs not yet acknowledged on this connection."""
        with self._subs_lock:
            return len(self._pending_subs)

    def wait_subscribed(self, timeout: float) -> bool:
        """True once the link is connected and every filter is SUBACKed on this connection."""
        with self._subscribed:
            return self._subscribed.wait_for(
                lambda: self.connected.is_set() and not self._pending_subs, timeout
            )

    def _send_subscribe(self, subs: list[tuple[str, int]], token: int) -> None:
        """SUBSCRIBE; ``token`` stands in the pending set until the packet's mid is known."""
        rc, mid = self._client.subscribe(subs)
        with self._subscribed:
            self._pending_subs.discard(token)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
                return  # the connection dropped: every filter is renewed on the next connect
            if mid in self._early_subacks:
                self._early_subacks.discard(mid)
            else:
                self._pending_subs.add(mid)

    # -- paho callbacks (run on paho's network thread) ----------------------------------------

    def _paho_connect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self.stats["connect_failures"] += 1
            self.last_error = f"broker refused the connection: {reason}"
            return
        self.stats["connects"] += 1
        self.last_error = None
        with self._subscribed:
            self._pending_subs.clear()
            self._early_subacks.clear()
            subs = [(f, q) for f, (q, _) in self._subs.items()]
            token = next(self._tokens)
            if subs:
                self._pending_subs.add(token)
            # Set while holding the lock that subscribe() takes to add a filter: a concurrent
            # subscribe() is either in ``subs`` or sees the link connected and sends its own.
            self.connected.set()
            self._subscribed.notify_all()
        if subs:
            self._send_subscribe(subs, token)
        self._call_hook(self.on_connect)

    def _paho_subscribed(
        self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        if any(r.is_failure for r in reasons):
            self.stats["subscribe_failures"] += 1
            self.last_error = f"broker refused a subscription: {[str(r) for r in reasons]}"
        with self._subscribed:
            if mid in self._pending_subs:
                self._pending_subs.discard(mid)
            else:
                self._early_subacks.add(mid)
            self._subscribed.notify_all()

    def _paho_connect_fail(self, client: Any, userdata: Any) -> None:
        self.stats["connect_failures"] += 1
        self.last_error = f"broker at {self.settings.host}:{self.settings.port} unreachable"

    def _paho_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if was_connected:
            self.stats["disconnects"] += 1
            self.last_error = f"disconnected: {reason}"
            self._call_hook(self.on_disconnect)

    def _paho_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.stats["puback"] += 1
        hook = self.on_published
        if hook is not None:
            try:
                hook(mid)
            except Exception:  # a bug in our hook must not kill paho's thread
                self.stats["callback_errors"] += 1

    def _paho_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.stats["messages"] += 1
        try:
            topic = message.topic
        except UnicodeDecodeError:  # a topic that is not UTF-8 matches none of our filters
            self.stats["handler_errors"] += 1
            return
        payload = bytes(message.payload)
        routes = self._routes  # first: a route built from older filters lands in a dropped dict
        route = routes.get(topic)
        if route is None:
            with self._subs_lock:
                subs = list(self._subs.items())
                limits = dict(self._limits)
            route = [(limits.get(f), hs) for f, (_, hs) in subs if topic_matches(f, topic)]
            if len(routes) > 10_000:  # topics are (node, kind) pairs: rarely this many
                routes.clear()
            routes[topic] = route
        size = len(payload)
        matching: list[Handler] = []
        for limit, hs in route:
            if limit is not None and size > limit:
                self.stats["oversized"] += 1
                continue
            matching += hs
        for handler in matching:
            try:
                handler(topic, payload)
            except Exception:  # bad input or a handler bug: counted, the loop lives on
                self.stats["handler_errors"] += 1

    def _call_hook(self, hook: Callable[[], None] | None) -> None:
        if hook is None:
            return
        try:
            hook()
        except Exception:
            self.stats["callback_errors"] += 1
