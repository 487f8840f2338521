"""The dashboard's Prometheus metrics (``GET /api/v1/metrics``, route ``api.metrics``).

The only dashboard module that imports prometheus-client. A custom collector reads, at each
scrape, what the process already counts (the ingest's counters, the broker link's) and a few
small tables (nodes, the newest policy, site settings, open anomalies, the newest backup
events); door decisions are counted from the bus as the ingest stores them. Conventions as on
the nodes (controller.metrics): base units, ``_total`` counters, timestamps where an age is
wanted (``time() - x``), labels that name nodes, doors and reasons, never a person.

==============================================  =======  ======================================
secroom_dashboard_database_up                   gauge    1 when the scrape could read the database
secroom_ingest_messages_received_total          counter  MQTT messages taken from the link
secroom_ingest_events_stored_total              counter  events stored (rate: the ingest rate)
secroom_ingest_rejected_total{reason}           counter  refused (bad signature, fork, oversized...)
secroom_ingest_noted_total{reason}              counter  stored but not projected
secroom_ingest_queue_messages                   gauge    received, not yet stored
secroom_ingest_db_errors_total                  counter  database failures the ingest retried
secroom_mqtt_connected / _connects_total ...    gauge    the dashboard's broker link
secroom_door_decisions_total{door,result,reason} counter door.access events stored since start
secroom_node_up{node}                           gauge    1 while the node's retained state is online
secroom_node_events_stored_total{node}          counter  events stored from the node
secroom_node_acked_seq{node} / _stored_seq      gauge    highest contiguous / highest stored seq
secroom_node_gap_open{node}                     gauge    1 while a gap waits for a resend
secroom_node_ingest_lag_seconds{node}           gauge    now - event time of its newest stored event
secroom_node_last_event_delay_seconds{node}     gauge    received - event time, newest event
secroom_node_clock_offset_seconds{node}         gauge    node clock - dashboard clock
secroom_node_clock_synchronised{node}           gauge    the node's events say "synced"
secroom_node_policy_version{node}               gauge    policy version the node applied
secroom_node_numbers_removed_total{node}        counter  numbers the node removed (its health)
secroom_node_receipts_refused_total{node,receipt} counter acks / resends the node refused
secroom_node_oversized_messages_total{node}     counter  oversized messages the node dropped
secroom_policy_published_version                gauge    newest signed policy
secroom_policy_issued_timestamp_seconds         gauge    when it was signed
secroom_policy_unpublished_changes              gauge    1 while changes wait for signing
secroom_lockdown_active                         gauge    1 in lockdown (site or any door)
secroom_backup_last_success_timestamp_seconds   gauge    newest good snapshot
secroom_backup_last_duration_seconds            gauge    how long it took
secroom_backup_last_failure_timestamp_seconds   gauge    newest failed run
secroom_anomalies_open{severity}                gauge    anomalies waiting for review
==============================================  =======  ======================================
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from controller.envelope import now_utc
from controller.metrics import link_families
from dashboard.bus import Bus, BusMessage
from dashboard.ingest.counters import NOTED, REJECT_REASONS
from dashboard.models.anomalies import Anomaly
from dashboard.models.events import StoredEvent
from dashboard.models.nodes import Node
from dashboard.models.people import SiteSettings
from dashboard.models.policy import PolicyVersion

CONTENT_TYPE = CONTENT_TYPE_LATEST


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _by(kind: type, name: str, doc: str, labels: list[str]) -> Any:
    return kind(name, doc, labels=labels)


class DoorDecisions:
    """door.access events stored since start, by door, result and reason (a bus listener: it
    runs on the ingest's thread, so it only counts)."""

    def __init__(self, bus: Bus | None) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str, str]] = Counter()
        listen = getattr(bus, "listen", None)  # None: an app without the runtime's bus
        if listen is not None:
            listen(("event",), self.on_message)

    def on_message(self, msg: BusMessage) -> None:
        data = msg.data
        if data.get("kind") != "door.access" or not isinstance(data.get("data"), dict):
            return
        access = data["data"]
        granted = access.get("granted") is True
        reason = "none" if granted else str(access.get("reason") or "unknown")[:64]
        key = (str(data.get("door") or access.get("door") or "")[:128],
               "granted" if granted else "denied", reason)
        with self._lock:
            self.counts[key] += 1

    def family(self) -> CounterMetricFamily:
        out = _by(CounterMetricFamily, "secroom_door_decisions",
                  "door.access events stored since the dashboard started, by decision",
                  ["door", "result", "reason"])
        with self._lock:
            rows = sorted(self.counts.items())
        for labels, n in rows:
            out.add_metric(list(labels), n)
        return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def node_families(db: Session, site: str, now: datetime) -> Iterator[Metric]:
    """One sample per node of the site, from the nodes table (a few rows) and each node's
    newest stored event."""
    names = ("up", "acked_seq", "stored_seq", "gap_open", "ingest_lag_seconds",
             "last_event_delay_seconds", "clock_offset_seconds", "clock_synchronised",
             "policy_version")
    docs = {
        "up": "1 while the node's retained state says online",
        "acked_seq": "Highest contiguous seq stored (acknowledged to the node)",
        "stored_seq": "Highest seq stored (above acked_seq: waiting behind a gap)",
        "gap_open": "1 while a gap in the node's seqs waits for a resend",
        "ingest_lag_seconds": "Now minus the event time of the node's newest stored event",
        "last_event_delay_seconds": "Received minus event time of the node's newest event",
        "clock_offset_seconds": "The node's clock minus the dashboard's (from its state)",
        "clock_synchronised": "1 when the node's newest events say its clock is synced",
        "policy_version": "Version of the policy the node applied",
    }
    gauges = {n: _by(GaugeMetricFamily, f"secroom_node_{n}", docs[n], ["node"]) for n in names}
    stored = _by(CounterMetricFamily, "secroom_node_events_stored",
                 "Events stored from the node", ["node"])
    removed = _by(CounterMetricFamily, "secroom_node_numbers_removed",
                  "Individual numbers the node replaced in events (its health, since its start)",
                  ["node"])
    refused = _by(CounterMetricFamily, "secroom_node_receipts_refused",
                  "Acks and resend requests the node refused (its health, since its start)",
                  ["node", "receipt"])
    oversized = _by(CounterMetricFamily, "secroom_node_oversized_messages",
                    "Messages over their size limit the node dropped (since its start)",
                    ["node"])
    for node in db.scalars(select(Node).where(Node.site == site).order_by(Node.name)):
        n = [node.name]
        newest = db.execute(select(StoredEvent.ts, StoredEvent.received_at)
                            .where(StoredEvent.node == node.name)
                            .order_by(StoredEvent.seq.desc()).limit(1)).first()
        values: dict[str, float | None] = {
            "up": float(node.state == "online"),
            "acked_seq": float(node.contiguous_seq or 0),
            "stored_seq": float(node.max_seq or 0),
            "gap_open": float(node.gap_since is not None),
            "ingest_lag_seconds": (now - node.last_event_at).total_seconds()
            if node.last_event_at is not None else None,
            "last_event_delay_seconds": (newest[1] - newest[0]).total_seconds()
            if newest is not None else None,
            "clock_offset_seconds": node.clock_offset_s,
            "clock_synchronised": float(node.clock_state == "synced")
            if node.clock_state is not None else None,
            "policy_version": _number(node.policy_version),
        }
        for name, value in values.items():
            if value is not None:
                gauges[name].add_metric(n, value)
        stored.add_metric(n, float(node.events_stored or 0))
        state = _dict(node.health)
        health, receipts = _dict(state.get("health")), _dict(state.get("receipts"))
        mqtt = _dict(health.get("mqtt"))
        if (value := _number(health.get("numbers_removed"))) is not None:
            removed.add_metric(n, value)
        for receipt in ("ack", "resend"):
            if (value := _number(receipts.get(f"{receipt}s_refused"))) is not None:
                refused.add_metric([node.name, receipt], value)
        if (value := _number(mqtt.get("oversized"))) is not None:
            oversized.add_metric(n, value)
    yield from gauges.values()
    yield from (stored, removed, refused, oversized)


def site_families(db: Session, site: str) -> Iterator[Metric]:
    """Policy, lockdown, backups and open anomalies."""
    policy = db.scalars(select(PolicyVersion).where(PolicyVersion.site == site)
                        .order_by(PolicyVersion.version.desc()).limit(1)).first()
    if policy is not None:
        yield _gauge("secroom_policy_published_version", "Newest signed policy version",
                     policy.version)
        yield _gauge("secroom_policy_issued_timestamp_seconds",
                     "When the newest policy was signed", policy.issued_at.timestamp())
    settings = db.get(SiteSettings, site)
    if settings is not None:
        yield _gauge("secroom_policy_unpublished_changes",
                     "1 while changes to people, rights or doors wait to be signed",
                     float(bool(settings.policy_dirty)))
        yield _gauge("secroom_lockdown_active", "1 while the site or any door is in lockdown",
                     float(bool(settings.lockdown or settings.lockdown_doors)))
    for kind, name, doc in (
            ("backup.snapshot", "last_success", "Event time of the newest good snapshot"),
            ("backup.failed", "last_failure", "Event time of the newest failed backup run")):
        row = db.execute(select(StoredEvent.ts, StoredEvent.data)
                         .where(StoredEvent.kind == kind)
                         .order_by(StoredEvent.ts.desc()).limit(1)).first()
        if row is None:
            continue
        yield _gauge(f"secroom_backup_{name}_timestamp_seconds", doc, row[0].timestamp())
        duration = _number(row[1].get("duration_s")) if isinstance(row[1], dict) else None
        if kind == "backup.snapshot" and duration is not None:
            yield _gauge("secroom_backup_last_duration_seconds",
                         "How long the newest good snapshot took", duration)
    anomalies = _by(GaugeMetricFamily, "secroom_anomalies_open",
                    "Anomalies waiting for review", ["severity"])
    counts = dict(db.execute(select(Anomaly.severity, func.count())
                             .where(Anomaly.state == "open").group_by(Anomaly.severity)).all())
    for severity in sorted({"info", "warning", "critical", *counts}):
        anomalies.add_metric([severity], float(counts.get(severity, 0)))
    yield anomalies


def ingest_families(consumer: Any) -> Iterator[Metric]:
    counters = consumer.counters
    yield CounterMetricFamily("secroom_ingest_messages_received",
                              "MQTT messages taken from the broker link",
                              value=counters.get("received", 0))
    yield CounterMetricFamily("secroom_ingest_events_stored", "Events stored",
                              value=counters.get("stored", 0))
    yield CounterMetricFamily("secroom_ingest_state_messages", "Node state messages taken",
                              value=counters.get("state", 0))
    for name, reasons, doc in (("rejected", REJECT_REASONS, "Messages refused, by reason"),
                               ("noted", NOTED, "Events stored but not projected, by reason")):
        family = _by(CounterMetricFamily, f"secroom_ingest_{name}", doc, ["reason"])
        for reason in reasons:
            family.add_metric([reason], counters.get(reason, 0))
        yield family
    yield _gauge("secroom_ingest_queue_messages", "Messages received and not yet stored",
                 counters.get("queued", 0))
    yield CounterMetricFamily("secroom_ingest_db_errors",
                              "Database failures the ingest retried", value=consumer.db_errors)
    yield CounterMetricFamily("secroom_ingest_batches", "Transactions the ingest committed",
                              value=consumer.batches)
    leases = getattr(consumer, "leases", None)
    if leases is not None:  # one of N replicas (dashboard.replicas)
        yield CounterMetricFamily("secroom_ingest_not_leased",
                                  "Messages left to the replica holding their node's lease",
                                  value=counters.get("not_leased", 0))
        yield _gauge("secroom_replica_leases_held", "Nodes whose events this replica stores",
                     len(leases.held))
        yield _gauge("secroom_replica_live", "Replicas alive at the last heartbeat",
                     len(leases.live))
        topics = getattr(consumer, "topics", None)
        if topics is not None:
            yield _gauge("secroom_replica_nodes_subscribed",
                         "Nodes whose events this replica's broker link is subscribed to",
                         len(topics.nodes))


class DashboardCollector(Collector):
    def __init__(self, sessionmaker: Any, *, site: str, consumer: Any = None, link: Any = None,
                 decisions: DoorDecisions | None = None,
                 clock: Callable[[], datetime] = now_utc) -> None:
        self.sessionmaker = sessionmaker
        self.site = site
        self.consumer = consumer
        self.link = link
        self.decisions = decisions
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        if self.consumer is not None:
            yield from ingest_families(self.consumer)
        if self.link is not None:
            yield from link_families(self.link.connected.is_set(), dict(self.link.stats))
            yield CounterMetricFamily("secroom_mqtt_link_restarts",
                                      "Times the broker link process was started again",
                                      value=getattr(self.link, "restarts", 0))
        if self.decisions is not None:
            yield self.decisions.family()
        try:
            with self.sessionmaker() as db:
                rows = [*node_families(db, self.site, self.clock()),
                        *site_families(db, self.site)]
        except SQLAlchemyError:
            rows = []
            up = 0.0
        else:
            up = 1.0
        yield _gauge("secroom_dashboard_database_up",
                     "1 when this scrape could read the database", up)
        yield from rows


def dashboard_registry(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    return registry


def for_runtime(runtime: Any) -> CollectorRegistry:
    """The registry of a running dashboard (``secroom dashboard run``): its ingest and broker
    link when MQTT is configured, door decisions counted from its bus from now on."""
    from dashboard.ingest.consumer import IngestConsumer

    consumer = next((p for p in runtime.parts if isinstance(p, IngestConsumer)), None)
    return dashboard_registry(DashboardCollector(
        runtime.sessionmaker, site=runtime.settings.site, consumer=consumer,
        link=consumer.link if consumer is not None else None,
        decisions=DoorDecisions(runtime.bus)))


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
