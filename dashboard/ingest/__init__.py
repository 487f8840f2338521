"""MQTT ingest: verify, store idempotently, project, ack, ask for resends, raise anomalies."""

from dashboard.ingest.core import BatchResult, IngestCore, Outcome, ResendRequest
from dashboard.ingest.counters import IngestCounters

__all__ = ["BatchResult", "IngestCore", "IngestCounters", "Outcome", "ResendRequest"]
