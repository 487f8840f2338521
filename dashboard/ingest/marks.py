"""Each node's chain marks after a batch is written: the contiguous mark (what the ack
carries), the highest seq, and the gaps between them (resend requests, each asked again at most
every ``resend_interval_s``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.envelope import Event
from dashboard import projections
from dashboard.ingest.batch import AckMark, BatchResult, ResendRequest
from dashboard.models.events import StoredEvent
from dashboard.models.nodes import Node


def next_counter(current: int, now: datetime) -> int:
    """The next receipt counter: above the last one, and at least the time in milliseconds, so
    it keeps rising after a database restored from an older backup (with a sane clock) and
    after the clock steps back (with the database)."""
    return max(current + 1, int(now.timestamp() * 1000))


class ChainMarks:
    def __init__(self, resend_interval_s: float = 5.0) -> None:
        self.resend_interval_s = resend_interval_s
        self._resent: dict[tuple[str, int, int], datetime] = {}

    def settle(
        self,
        session: Session,
        node: Node,
        accepted: dict[int, Event],
        old_max: int,
        now: datetime,
        result: BatchResult,
    ) -> None:
        """The node's counters, contiguous mark (ack) and gaps after its events are written."""
        if not accepted:
            return
        result.counts["stored"] += len(accepted)
        node.events_stored += len(accepted)
        node.last_seen_at = now
        top = max(accepted)
        projections.note_last_event(node, accepted[top])
        if top > node.max_seq:
            node.max_seq, node.max_hash = top, accepted[top].hash
        c = node.contiguous_seq
        c_hash = node.contiguous_hash
        while c + 1 in accepted:
            c += 1
            c_hash = accepted[c].hash
        if c < node.max_seq and old_max > c:
            c, c_hash = self.walk_stored(session, node.name, c, c_hash)
            while c + 1 in accepted:
                c += 1
                c_hash = accepted[c].hash
        if c > node.contiguous_seq:
            node.contiguous_seq, node.contiguous_hash = c, c_hash
            node.ack_counter = next_counter(node.ack_counter, now)
            result.acks[node.name] = AckMark(c, c_hash or "", node.ack_counter)
        if node.max_seq > node.contiguous_seq:
            if node.gap_since is None:
                node.gap_since = now
            first = node.contiguous_seq + 1
            nxt = min((s for s in accepted if s > first), default=None)
            if nxt is None or old_max > first:
                session.flush()
                first, last = self.gap_range(session, node)
            else:
                last = nxt - 1
            self.request(node, first, last, now, result)
        else:
            node.gap_since = None
        result.messages.append(("node", {"node": node.name}))

    def walk_stored(
        self, session: Session, node: str, c: int, c_hash: str | None
    ) -> tuple[int, str | None]:
        """Advance the contiguous mark over events already stored beyond it."""
        session.flush()
        while True:
            got = session.execute(
                select(StoredEvent.seq, StoredEvent.hash)
                .where(StoredEvent.node == node, StoredEvent.seq > c)
                .order_by(StoredEvent.seq)
                .limit(1000)
            ).all()
            for seq, h in got:
                if seq != c + 1:
                    return c, c_hash
                c, c_hash = seq, h
            if len(got) < 1000:
                return c, c_hash

    def gap_range(self, session: Session, node: Node) -> tuple[int, int]:
        first = node.contiguous_seq + 1
        nxt = session.scalar(
            select(StoredEvent.seq)
            .where(StoredEvent.node == node.name, StoredEvent.seq > node.contiguous_seq)
            .order_by(StoredEvent.seq)
            .limit(1)
        )
        return first, (nxt - 1 if nxt is not None else node.max_seq)

    def request(
        self, node: Node, first: int, last: int, now: datetime, result: BatchResult
    ) -> None:
        key = (node.name, first, last)
        sent = self._resent.get(key)
        if sent is not None and (now - sent).total_seconds() < self.resend_interval_s:
            return
        if len(self._resent) > 10_000:
            self._resent.clear()
        self._resent[key] = now
        node.resend_counter = next_counter(node.resend_counter, now)
        result.resends.append(ResendRequest(node.name, first, last, node.resend_counter))
