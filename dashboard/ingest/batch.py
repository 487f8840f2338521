"""What one ingest batch produces: an outcome per payload, the acks and resend requests to
publish after the commit, the bus messages, counts, and the anomalies collected on the way."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controller.envelope import Event


class Outcome(NamedTuple):  # one per payload: a tuple, cheap to build thousands of times
    topic: str
    status: str  # stored | duplicate | rejected | state
    reason: str | None = None
    node: str | None = None
    seq: int | None = None
    index: int = -1  # position of the payload in the batch given to ``process``


class AckMark(NamedTuple):
    """A node's new contiguous mark: what the signed ack carries (controller.receipts.Ack)."""

    seq: int
    hash: str
    counter: int


@dataclass(frozen=True)
class ResendRequest:
    node: str
    first: int
    last: int
    counter: int = field(default=0, compare=False)  # raised per request (the node refuses old)


@dataclass
class BatchResult:
    outcomes: list[Outcome] = field(default_factory=list)
    acks: dict[str, AckMark] = field(default_factory=dict)
    resends: list[ResendRequest] = field(default_factory=list)
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    # stored events whose own signature chain mode left for the SignatureAudit
    unchecked: list[tuple[Ed25519PublicKey, Event]] = field(default_factory=list)
    index_of: dict[int, int] = field(default_factory=dict, repr=False)  # id(Event) -> index
    # id(Event) -> key of the events accepted on their chain alone (scratch, like index_of)
    unchecked_keys: dict[int, Ed25519PublicKey] = field(default_factory=dict, repr=False)

    @property
    def stored(self) -> int:
        return self.counts["stored"]


@dataclass
class PendingAnomalies:
    """Anomalies collected during a batch, raised once each with a count."""

    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def add(
        self,
        kind: str,
        key: str,
        *,
        node: str | None,
        subject: str,
        severity: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        slot = self.items.get((kind, key))
        if slot is None:
            self.items[(kind, key)] = {
                "node": node,
                "subject": subject,
                "severity": severity,
                "detail": dict(detail or {}),
                "count": 1,
            }
        else:
            slot["count"] += 1
            if detail:
                slot["detail"].update(detail)
