"""Feeds the correlation from the dashboard's bus: every event the ingest stored is correlated
at once, and the periodic checks (backups, overdue media, node-log gaps) run every
``tick_s``. The lead starts it next to the ingest consumer (``DashboardRuntime``).

A failure rolls the transaction back and is counted and re-raised to the caller of
``process_one`` (the loop records it in ``errors`` and keeps the event's error visible; the
full re-run over the period repairs anything missed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dashboard.bus import Bus, BusMessage
from dashboard.correlation.engine import Correlator
from dashboard.correlation.types import LoanIn


@dataclass
class CorrelationListener:
    bus: Bus
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    correlator: Correlator = field(default_factory=Correlator)
    loans: Callable[[Session], Iterable[LoanIn]] | None = None  # default: the media ledger
    tick_s: float = 300.0
    processed: int = 0
    errors: int = 0
    last_error: str = ""
    on_findings: Callable[[list[str]], None] | None = None
    on_items: Callable[[list[int]], None] | None = None  # review items raised (anomaly ids)

    def process_one(self, msg: BusMessage) -> list[str]:
        """Correlate one bus "event" message; returns the new finding keys."""
        d = msg.data
        node, seq = d.get("node"), d.get("seq")
        if not isinstance(node, str) or not isinstance(seq, int):
            return []
        with self.sessions() as s:
            try:
                res = self.correlator.on_stored(s, node, seq, self.clock())
                s.commit()
            except SQLAlchemyError:
                s.rollback()
                raise
        self.processed += 1
        if res.new and self.on_findings:
            self.on_findings(res.new)
        if res.anomalies and self.on_items:
            self.on_items(res.anomalies)
        return res.new

    def tick(self) -> list[str]:
        with self.sessions() as s:
            if self.loans is None:
                from dashboard.correlation.sources import loans

                got = loans(s)
            else:
                got = list(self.loans(s))
            res = self.correlator.tick(s, self.clock(), got)
            s.commit()
        if res.anomalies and self.on_items:
            self.on_items(res.anomalies)
        return res.new

    def run(self, stop: threading.Event) -> None:
        sub = self.bus.subscribe(("event",), maxsize=10_000)
        next_tick = 0.0
        try:
            while not stop.is_set():
                msg = sub.get(timeout=0.5)
                try:
                    if msg is not None:
                        self.process_one(msg)
                    now = self.clock().timestamp()
                    if now >= next_tick:
                        self.tick()
                        next_tick = now + self.tick_s
                except SQLAlchemyError as exc:  # counted and shown; the re-run repairs it
                    self.errors += 1
                    self.last_error = type(exc).__name__
        finally:
            sub.close()


def publish_new_items(listener: CorrelationListener, bus: Bus) -> None:
    """Tell the live pages (the review queue, the overview) about the items the correlation
    raised, after their commit, as the ingest does for its own."""
    def publish(ids: list[int]) -> None:
        for anomaly_id in ids:
            bus.publish("anomaly", {"id": anomaly_id, "kind": ""})

    listener.on_items = publish
