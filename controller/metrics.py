"""A node's Prometheus metrics, served on a loopback port (``[metrics] listen``, off by default).

The only node module that imports prometheus-client. Nothing is instrumented on the hot paths:
``NodeCollector`` is a custom collector (prometheus-client's pattern for counters kept
elsewhere) that reads, at each scrape, what the runtime, journal, publisher, broker link and
gateway already count. Names follow Prometheus' conventions: base units (seconds, events),
``_total`` for counters, timestamps rather than ages (an alert computes ``time() - x``), and no
label that names a person: doors, readers and the node only.

Families (a gateway adds the door and reader ones; the USB agent has the rest):

==========================================  =======  ============================================
secroom_node_info{node,site}                gauge    1 (who this is)
secroom_journal_events_total                counter  events journaled (the head seq)
secroom_journal_delivered_events_total      counter  taken by the broker (PUBACK, contiguous)
secroom_journal_acked_events_total          counter  acknowledged by the dashboard (stored)
secroom_journal_pending_events              gauge    journaled, not yet acknowledged (head - ack)
secroom_journal_oldest_pending_timestamp_seconds gauge  event time of the oldest pending event
secroom_journal_pruned_events_total         counter  rows pruned since start
secroom_journal_write_failures_total        counter  events the journal could not take (gateway)
secroom_publisher_sent_total                counter  events published (first time), since start
secroom_publisher_resent_total              counter  events re-published on request
secroom_receipts_accepted_total             counter  signed acks taken
secroom_receipts_refused_total{receipt}     counter  acks / resend requests refused (forged...)
secroom_receipts_dropped_total              counter  receipts dropped in a flood
secroom_numbers_removed_total               counter  individual numbers replaced in events
secroom_mqtt_connected                      gauge    1 while connected to the broker
secroom_mqtt_connects_total ...             counter  connects, connect_failures, disconnects
secroom_mqtt_oversized_messages_total       counter  received messages over a topic's limit
secroom_clock_synchronised                  gauge    1 when the kernel clock is NTP-synchronised
secroom_policy_applied_version              gauge    version of the policy in force (-1: none)
secroom_policy_issued_timestamp_seconds     gauge    when the dashboard issued it
secroom_door_decisions_total{door,result,reason}  counter  taps decided: granted / denied why
secroom_card_taps_total                     counter  card taps read
secroom_reader_read_failures_total          counter  taps that could not be read
secroom_reader_connected{reader}            gauge    1 while the reader is present
secroom_door_unlocked{door} / _lockdown     gauge    strike released / door in lockdown
secroom_door_open{door}                     gauge    contact open (doors with a contact)
==========================================  =======  ============================================
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from controller.policy import Policy
    from controller.runtime import NodeRuntime

log = logging.getLogger(__name__)


class MetricsError(Exception):
    """The metrics endpoint cannot be served as configured."""


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9108"`` or ``"[::1]:9108"`` -> (address, port); the host must be an IP."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError as exc:
        raise ValueError(f"listen must be IP:PORT such as 127.0.0.1:9108, not {text!r}") from exc
    if not sep or not 0 <= number <= 65535:
        raise ValueError(f"listen must be IP:PORT such as 127.0.0.1:9108, not {text!r}")
    return host, number


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def policy_families(policy: Policy | None) -> Iterator[Metric]:
    yield _gauge("secroom_policy_applied_version",
                 "Version of the signed policy in force (-1: none yet)",
                 policy.version if policy is not None else -1)
    if policy is not None:
        yield _gauge("secroom_policy_issued_timestamp_seconds",
                     "When the dashboard issued the policy in force (Unix time)",
                     policy.issued_at.timestamp())


def runtime_families(runtime: NodeRuntime) -> Iterator[Metric]:
    """What every node's runtime counts: journal, delivery, receipts, broker link."""
    journal, publisher, link = runtime.journal, runtime.publisher, runtime.link
    head, ack, delivered = journal.head()[0], journal.ack, publisher.delivered
    stats = dict(publisher.stats)
    info = GaugeMetricFamily("secroom_node_info", "The node this process runs",
                             labels=["node", "site"])
    info.add_metric([journal.node, journal.site], 1)
    yield info
    yield _counter("secroom_journal_events",
                   "Events journaled by this node (its head seq; seqs run from 1)", head)
    yield _counter("secroom_journal_delivered_events",
                   "Events the broker has taken (PUBACK), contiguous from 1", delivered)
    yield _counter("secroom_journal_acked_events",
                   "Events the dashboard acknowledged storing, contiguous from 1", ack)
    yield _gauge("secroom_journal_pending_events",
                 "Events journaled but not yet acknowledged by the dashboard", max(0, head - ack))
    if head > ack:
        oldest = journal.events(ack + 1, ack + 1, limit=1)
        if oldest:
            yield _gauge("secroom_journal_oldest_pending_timestamp_seconds",
                         "Event time of the oldest event the dashboard has not acknowledged",
                         oldest[0].when.timestamp())
    yield _counter("secroom_journal_pruned_events", "Journal rows pruned since start",
                   stats.get("pruned", 0))
    yield _counter("secroom_publisher_sent", "Events published for the first time since start",
                   stats.get("sent", 0))
    yield _counter("secroom_publisher_resent", "Events published again on a resend request",
                   stats.get("resent", 0))
    yield _counter("secroom_publisher_errors", "Publisher loop errors since start",
                   stats.get("errors", 0) + stats.get("journal_errors", 0))
    yield _counter("secroom_receipts_accepted", "Signed acks from the dashboard taken",
                   stats.get("acks", 0))
    refused = CounterMetricFamily("secroom_receipts_refused",
                                  "Acks and resend requests refused (bad signature, replay...)",
                                  labels=["receipt"])
    refused.add_metric(["ack"], stats.get("acks_refused", 0))
    refused.add_metric(["resend"], stats.get("resends_refused", 0))
    yield refused
    yield _counter("secroom_receipts_dropped", "Receipts dropped unread in a flood",
                   stats.get("receipts_dropped", 0))
    yield _counter("secroom_numbers_removed",
                   "Individual numbers the journal replaced in events since start",
                   journal.numbers_removed)
    yield from link_families(link.connected.is_set(), dict(link.stats))


def link_families(connected: bool, stats: dict[str, int]) -> Iterator[Metric]:
    """A broker link's state and counters (the dashboard's link has the same ones)."""
    yield _gauge("secroom_mqtt_connected", "1 while connected to the broker", int(connected))
    for key, doc in (("connects", "Connections made to the broker"),
                     ("connect_failures", "Connection attempts that failed"),
                     ("disconnects", "Connections lost or closed"),
                     ("handler_errors", "Received messages a handler refused"),
                     ("messages", "Messages the broker sent on this link")):
        yield _counter(f"secroom_mqtt_{key}", doc, stats.get(key, 0))
    yield _counter("secroom_mqtt_oversized_messages",
                   "Received messages over their topic's size limit (dropped)",
                   stats.get("oversized", 0))


def gateway_families(gateway: Any) -> Iterator[Metric]:
    """The door gateway's own: decisions by door and result, taps, readers, doors."""
    counters = dict(gateway.counters)
    decisions = CounterMetricFamily(
        "secroom_door_decisions", "Card taps at doors by decision (reason: why denied)",
        labels=["door", "result", "reason"])
    for (door, result, reason), n in sorted(dict(gateway.decisions).items()):
        decisions.add_metric([door, result, reason], n)
    yield decisions
    yield _counter("secroom_card_taps", "Card taps read", counters.get("taps", 0))
    yield _counter("secroom_reader_read_failures", "Taps that could not be read",
                   counters.get("read_failures", 0))
    yield _counter("secroom_reader_unbound_taps", "Taps at readers bound to nothing",
                   counters.get("unbound_taps", 0))
    yield _counter("secroom_journal_write_failures", "Events the journal could not take",
                   counters.get("journal_failures", 0))
    yield _counter("secroom_door_unlock_failures", "Grants whose strike could not be released",
                   counters.get("grant_failed", 0))
    readers = GaugeMetricFamily("secroom_reader_connected", "1 while the reader is present",
                                labels=["reader"])
    for reader, connected in sorted(dict(gateway.readers_connected).items()):
        readers.add_metric([reader], int(connected))
    yield readers
    unlocked = GaugeMetricFamily("secroom_door_unlocked", "1 while the strike is released",
                                 labels=["door"])
    lockdown = GaugeMetricFamily("secroom_door_lockdown", "1 while the door is in lockdown",
                                 labels=["door"])
    is_open = GaugeMetricFamily("secroom_door_open", "1 while the door contact reads open",
                                labels=["door"])
    for door_id, door in sorted(dict(gateway.doors).items()):
        unlocked.add_metric([door_id], int(door.state == "unlocked"))
        lockdown.add_metric([door_id], int(door.in_lockdown))
        if door.contact_open is not None:
            is_open.add_metric([door_id], int(door.contact_open))
    yield from (unlocked, lockdown, is_open)


class NodeCollector(Collector):
    """Everything a node counts, read at scrape time."""

    def __init__(self, runtime: NodeRuntime, *, clock_state: Callable[[], str],
                 policy: Callable[[], Policy | None], gateway: Any = None) -> None:
        self.runtime = runtime
        self.clock_state = clock_state
        self.policy = policy
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        yield from runtime_families(self.runtime)
        yield _gauge("secroom_clock_synchronised",
                     "1 when the kernel clock is NTP-synchronised (events say synced)",
                     int(self.clock_state() == "synced"))
        yield from policy_families(self.policy())
        if self.gateway is not None:
            yield from gateway_families(self.gateway)


def node_registry(collector: Collector) -> CollectorRegistry:
    """A registry of its own (not the library's global one): the node's collector, and the
    process and platform metrics (memory, CPU, open files, start time)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


class MetricsServer:
    """prometheus-client's own HTTP server on ``listen``, stopped with the node."""

    def __init__(self, listen: str, registry: CollectorRegistry) -> None:
        self.address, self.port = parse_listen(listen)
        self.registry = registry
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._server, self._thread = start_http_server(self.port, self.address,
                                                           self.registry)
        except OSError as exc:
            raise MetricsError(f"cannot serve metrics on {self.address}:{self.port}: "
                               f"{exc.strerror or exc}") from exc
        self.port = int(self._server.server_port)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None


def serve_node(listen: str | None, collector: Collector) -> MetricsServer | None:
    """Serve ``collector`` on ``listen`` (None: metrics are off). A port that cannot be bound
    is logged and the node runs on without metrics: its doors matter more than its graphs."""
    if listen is None:
        return None
    server = MetricsServer(listen, node_registry(collector))
    try:
        server.start()
    except MetricsError:
        log.exception("metrics are off for this run")
        return None
    return server
