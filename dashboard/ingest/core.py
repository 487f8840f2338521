"""The ingest core: a batch of (topic, payload) in, stored events, projections and outcomes out.

No MQTT and no clock here: the caller passes a session and ``now``, commits, then publishes the
acks and resend requests of the returned ``BatchResult`` (so an ack never runs ahead of a commit).
Steps per batch: route the topic, size limit, parse (shape and hash), site and topic checks
(``prepare``: no database, so the consumer overlaps it with the previous batch's storing),
then enrolled and approved node, signature; then the stored neighbours each node's events
need (``_lookup``), and per node in seq order, with no query meanwhile (on PostgreSQL the rows
stream into a COPY as they are accepted): duplicate or fork against what is stored, chain link
to seq-1 and seq+1, insert (``_accept``); then each node's contiguous mark (ack) and gaps
(resend request; anomaly later if not filled) (``_settle``); then door access and presence.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.envelope import GENESIS, MAX_EVENT_BYTES, TOPIC_ROOT, EnvelopeError, Event, parse
from dashboard import projections
from dashboard.anomalies import anomaly_dict, raise_anomaly
from dashboard.bulk import row_writer
from dashboard.ingest.counters import IngestCounters
from dashboard.ingest.state import StateHandler
from dashboard.ingest.verify import SignatureVerifier
from dashboard.models.events import StoredEvent
from dashboard.models.nodes import Node

MAX_SEQ = 2**62  # fits a signed 64-bit column with room to spare
_ANOMALY_KINDS = frozenset({"door.forced", "door.held_open", "policy.rejected"})


class Outcome(NamedTuple):  # one per payload: a tuple, cheap to build thousands of times
    topic: str
    status: str  # stored | duplicate | rejected | state
    reason: str | None = None
    node: str | None = None
    seq: int | None = None
    index: int = -1  # position of the payload in the batch given to ``process``


@dataclass(frozen=True)
class ResendRequest:
    node: str
    first: int
    last: int

    def payload(self) -> dict[str, int]:
        return {"from": self.first, "to": self.last}


@dataclass
class BatchResult:
    outcomes: list[Outcome] = field(default_factory=list)
    acks: dict[str, int] = field(default_factory=dict)
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
class _Pending:
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


@dataclass(frozen=True)
class Prepared:
    """What ``IngestCore.prepare`` found in a batch: the rejects (in ``routed``), the parsed
    events and the state messages."""

    routed: BatchResult
    events: list[tuple[str, Event]]
    states: list[tuple[int, str, str, bytes]]


def _reject_reason(exc: EnvelopeError) -> str:
    text = str(exc)
    if "exceeds" in text:
        return "oversized"
    if "hash" in text:
        return "bad_hash"
    if "schema version" in text:
        return "bad_version"
    return "malformed"


class IngestCore:
    def __init__(
        self,
        *,
        site: str,
        verifier: SignatureVerifier | None = None,
        max_payload: int = MAX_EVENT_BYTES,
        resend_interval_s: float = 5.0,
        max_pending_nodes: int = 100,
    ) -> None:
        self.site = site
        self.verifier = verifier or SignatureVerifier()
        self.max_payload = max_payload
        self.resend_interval_s = resend_interval_s
        self.counters = IngestCounters()
        self.state = StateHandler(site=site, max_payload=max_payload, max_pending=max_pending_nodes)
        self._resent: dict[tuple[str, int, int], datetime] = {}
        self._prefix = f"{TOPIC_ROOT}/{site}/"

    # -- public ------------------------------------------------------------------------------

    def prepare(self, items: Sequence[tuple[str, bytes]]) -> Prepared:
        """The database-free first step of a batch: route, size limit, parse, site and topic
        checks. The consumer runs it on the next batch while this one is being stored."""
        routed = BatchResult()
        events: list[tuple[str, Event]] = []
        states: list[tuple[int, str, str, bytes]] = []
        for index, (topic, payload) in enumerate(items):
            self._route(index, topic, payload, routed, events, states)
        return Prepared(routed, events, states)

    def process(
        self, session: Session, items: Sequence[tuple[str, bytes]], now: datetime
    ) -> BatchResult:
        return self.process_prepared(session, self.prepare(items), now)

    def process_prepared(self, session: Session, prepared: Prepared, now: datetime) -> BatchResult:
        """The rest of the batch, in ``session``; may be run again on the same ``prepared``
        after a failed transaction (it starts from a copy of what ``prepare`` found)."""
        routed = prepared.routed
        result = BatchResult(
            outcomes=list(routed.outcomes),
            counts=Counter(routed.counts),
            index_of=dict(routed.index_of),
        )
        pending = _Pending()
        for index, topic, node_name, payload in prepared.states:
            reason = self.state.apply(session, node_name, payload, now, pending)
            status = "state" if reason is None else "rejected"
            result.outcomes.append(Outcome(topic, status, reason, node_name, None, index))
            result.counts["state" if reason is None else reason] += 1
            if reason is None:
                result.messages.append(("node", {"node": node_name}))
        if prepared.events:
            self._process_events(session, prepared.events, now, result, pending)
        self._raise(session, pending, now, result)
        session.flush()
        self.counters.update(result.counts)
        result.outcomes.sort(key=lambda o: o.index)
        result.index_of.clear()
        result.unchecked_keys.clear()
        return result

    def check_gaps(self, session: Session, now: datetime, gap_timeout_s: float) -> BatchResult:
        """Re-ask for unfilled gaps; raise a gap anomaly for any older than ``gap_timeout_s``."""
        result = BatchResult()
        pending = _Pending()
        for node in session.scalars(
            select(Node).where(Node.gap_since.is_not(None), Node.key_status == "approved")
        ):
            first, last = self._gap_range(session, node)
            if first > last:
                node.gap_since = None
                continue
            self._request(node.name, first, last, now, result)
            assert node.gap_since is not None
            if (now - node.gap_since).total_seconds() >= gap_timeout_s:
                pending.add(
                    "gap",
                    f"{node.name}:{first}",
                    node=node.name,
                    severity="critical",
                    subject=f"{node.name}: events {first}..{last} missing",
                    detail={"from": first, "to": last, "since": node.gap_since},
                )
        self._raise(session, pending, now, result)
        session.flush()
        return result

    def signature_failures(
        self, session: Session, failures: Sequence[tuple[str, int]], now: datetime
    ) -> BatchResult:
        """Raise ``bad_signature`` for stored events whose own signature the audit found bad
        (their content was authenticated by the chain before they were stored)."""
        result = BatchResult()
        pending = _Pending()
        for node, seq in failures:
            pending.add(
                "bad_signature",
                node,
                node=node,
                severity="critical",
                subject=f"{node}: event with a bad signature",
                detail={"last_seq": seq, "stored": True},
            )
            result.counts["bad_signature_stored"] += 1
        self._raise(session, pending, now, result)
        session.flush()
        self.counters.update(result.counts)
        return result

    # -- routing and parsing -----------------------------------------------------------------

    def _route(
        self,
        index: int,
        topic: str,
        payload: bytes,
        result: BatchResult,
        events: list[tuple[str, Event]],
        states: list[tuple[int, str, str, bytes]],
    ) -> None:
        def reject(reason: str, node: str | None = None) -> None:
            result.outcomes.append(Outcome(topic, "rejected", reason, node, None, index))
            result.counts[reason] += 1

        if not topic.startswith(self._prefix):
            reject("wrong_site" if topic.startswith(TOPIC_ROOT + "/") else "bad_topic")
            return
        parts = topic[len(self._prefix) :].split("/")
        if len(parts) == 2 and parts[1] == "state":
            states.append((index, topic, parts[0], payload))
            return
        if len(parts) != 3 or parts[1] != "events":
            reject("bad_topic")
            return
        if len(payload) > self.max_payload:
            reject("oversized", parts[0])
            return
        try:
            event = parse(payload)
            projections.event_time(event.ts)  # a ts that matches the pattern but is no date
        except EnvelopeError as exc:
            reject(_reject_reason(exc), parts[0])
            return
        except (RecursionError, ValueError, OverflowError):  # absurd nesting, a 13th month...
            reject("malformed", parts[0])
            return
        if event.seq > MAX_SEQ:
            reject("malformed", parts[0])
            return
        if event.site != self.site:
            reject("wrong_site", parts[0])
        elif event.node != parts[0] or event.kind != parts[2]:
            reject("topic_mismatch", parts[0])
        else:
            result.index_of[id(event)] = index
            events.append((topic, event))

    # -- events ------------------------------------------------------------------------------

    def _process_events(
        self,
        session: Session,
        events: list[tuple[str, Event]],
        now: datetime,
        result: BatchResult,
        pending: _Pending,
    ) -> None:
        names = sorted({e.node for _, e in events})
        nodes = {n.name: n for n in session.scalars(select(Node).where(Node.name.in_(names)))}
        to_verify: list[tuple[str, Event]] = []
        keys = []
        for topic, event in events:
            node = nodes.get(event.node)
            if node is None:
                self._reject(result, topic, event, "unknown_node")
                pending.add(
                    "unknown_node",
                    "site",
                    node=None,
                    severity="critical",
                    subject="events from a node that is not enrolled",
                    detail={"last_node": event.node},
                )
                continue
            key = self.verifier.key(node.public_key) if node.approved and node.public_key else None
            if key is None:
                self._reject(result, topic, event, "node_not_approved")
                pending.add(
                    "unapproved_node",
                    node.name,
                    node=node.name,
                    severity="warning",
                    subject=f"{node.name}: events from a node whose key is not approved",
                    detail={"key_status": node.key_status},
                )
                continue
            to_verify.append((topic, event))
            keys.append(key)
        ok, unchecked = self.verifier.verify_events(
            [(k, e) for k, (_, e) in zip(keys, to_verify, strict=True)]
        )
        result.unchecked_keys = {id(to_verify[i][1]): keys[i] for i in unchecked}
        by_node: dict[str, list[tuple[str, Event]]] = defaultdict(list)
        for good, (topic, event) in zip(ok, to_verify, strict=True):
            if good:
                by_node[event.node].append((topic, event))
            else:
                self._reject(result, topic, event, "bad_signature")
                pending.add(
                    "bad_signature",
                    event.node,
                    node=event.node,
                    severity="critical",
                    subject=f"{event.node}: event with a bad signature",
                    detail={"last_seq": event.seq},
                )
        access: list[dict[str, Any]] = []
        late_access: list[dict[str, Any]] = []
        known = {name: self._lookup(session, nodes[name], batch) for name, batch in by_node.items()}
        accepted: dict[str, tuple[dict[int, Event], int]] = {}
        # no query until the block ends: on PostgreSQL the rows stream into a COPY meanwhile
        with row_writer(session, StoredEvent.__table__) as write:  # type: ignore[arg-type]
            for name, batch in by_node.items():
                accepted[name] = self._accept(
                    nodes[name],
                    batch,
                    known[name],
                    now,
                    result,
                    pending,
                    write,
                    access,
                    late_access,
                )
        for name, (events_of, old_max) in accepted.items():
            self._settle(session, nodes[name], events_of, old_max, now, result)
        projections.store_door_access(session, access + late_access, late_access)

    def _reject(self, result: BatchResult, topic: str, event: Event, reason: str) -> None:
        result.outcomes.append(
            Outcome(
                topic,
                "duplicate" if reason == "duplicate" else "rejected",
                reason,
                event.node,
                event.seq,
                result.index_of.get(id(event), -1),
            )
        )
        result.counts[reason] += 1

    def _known(self, session: Session, node: Node, seqs: set[int]) -> dict[int, tuple[str, str]]:
        """(hash, prev) of stored events of ``node`` among ``seqs``."""
        out: dict[int, tuple[str, str]] = {}
        wanted = sorted(s for s in seqs if 1 <= s <= node.max_seq)
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            for seq, h, prev in session.execute(
                select(StoredEvent.seq, StoredEvent.hash, StoredEvent.prev).where(
                    StoredEvent.node == node.name, StoredEvent.seq.in_(chunk)
                )
            ):
                out[seq] = (h, prev)
        return out

    def _lookup(
        self, session: Session, node: Node, batch: list[tuple[str, Event]]
    ) -> dict[int, tuple[str, str]]:
        """Sort ``batch`` by seq; (hash, prev) of the stored events its checks need: each
        event's own seq (duplicate or fork), seq-1 (its chain link) and seq+1 (theirs)."""
        batch.sort(key=lambda te: te[1].seq)
        seqs = {e.seq for _, e in batch}
        successors = {s + 1 for s in seqs}
        lookup = seqs | {s - 1 for s in seqs} | successors
        cached: dict[int, str | None] = {
            node.max_seq: node.max_hash,
            node.contiguous_seq: node.contiguous_hash,
        }
        for seq, digest in list(cached.items()):
            # the node row knows these hashes; a successor's prev link still needs the DB
            if seq and digest and seq not in successors:
                lookup.discard(seq)
            else:
                del cached[seq]
        known = self._known(session, node, lookup)
        for seq, digest in cached.items():
            if digest is not None:
                known.setdefault(seq, (digest, ""))
        return known

    def _accept(
        self,
        node: Node,
        batch: list[tuple[str, Event]],
        known: dict[int, tuple[str, str]],
        now: datetime,
        result: BatchResult,
        pending: _Pending,
        write: Callable[[dict[str, Any]], None],
        access: list[dict[str, Any]],
        late_access: list[dict[str, Any]],
    ) -> tuple[dict[int, Event], int]:
        """Duplicate, fork and chain checks of one node's sorted batch, without the database:
        each event accepted is written (``write``) and projected; returns the accepted events
        by seq and the node's max seq before them."""
        accepted: dict[int, Event] = {}
        old_max = node.max_seq
        for topic, event in batch:
            seq = event.seq
            have = accepted[seq].hash if seq in accepted else known.get(seq, (None,))[0]
            if have is not None:
                if have == event.hash:
                    self._reject(result, topic, event, "duplicate")
                else:
                    self._reject(result, topic, event, "fork")
                    pending.add(
                        "fork",
                        f"{node.name}:{seq}",
                        node=node.name,
                        severity="critical",
                        subject=f"{node.name}: two different events with seq {seq}",
                        detail={"seq": seq, "stored": have, "offered": event.hash},
                    )
                continue
            before = (
                accepted[seq - 1].hash
                if seq - 1 in accepted
                else (GENESIS if seq == 1 else known.get(seq - 1, (None,))[0])
            )
            after_prev = known.get(seq + 1, (None, None))[1] if seq + 1 not in accepted else None
            chain_ok = (before is None or event.prev == before) and (
                not after_prev or after_prev == event.hash
            )
            if not chain_ok:
                pending.add(
                    "chain",
                    f"{node.name}:{seq}",
                    node=node.name,
                    severity="critical",
                    subject=f"{node.name}: hash chain broken at seq {seq}",
                    detail={"seq": seq},
                )
            accepted[seq] = event
            unchecked_key = result.unchecked_keys.get(id(event))
            if unchecked_key is not None:
                result.unchecked.append((unchecked_key, event))
            person_id, door = projections.event_refs(event)
            write(
                {
                    "node": event.node,
                    "seq": seq,
                    "kind": event.kind,
                    "ts": projections.event_time(event.ts),
                    "received_at": now,
                    "boot": event.boot,
                    "clock": event.clock,
                    "person_id": person_id,
                    "door": door,
                    "data": event.data,
                    "prev": event.prev,
                    "hash": event.hash,
                    "sig": event.sig,
                    "chain_ok": chain_ok,
                }
            )
            result.outcomes.append(
                Outcome(topic, "stored", None, node.name, seq, result.index_of.get(id(event), -1))
            )
            result.messages.append(
                (
                    "event",
                    {
                        "node": event.node,
                        "seq": seq,
                        "kind": event.kind,
                        "ts": event.ts,
                        "person_id": person_id,
                        "door": door,
                        "data": event.data,
                    },
                )
            )
            if event.kind in projections.HEALTH_KINDS:
                projections.apply_node_health(node, event)
            if event.kind in _ANOMALY_KINDS:
                self._event_anomalies(event, pending)
            if event.kind == "door.access":
                row = projections.door_access_row(event)
                if row is None:
                    result.counts["projection_skipped"] += 1
                else:
                    (late_access if seq < old_max else access).append(row)
        return accepted, old_max

    def _settle(
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
            c, c_hash = self._walk_stored(session, node.name, c, c_hash)
            while c + 1 in accepted:
                c += 1
                c_hash = accepted[c].hash
        if c > node.contiguous_seq:
            node.contiguous_seq, node.contiguous_hash = c, c_hash
            result.acks[node.name] = c
        if node.max_seq > node.contiguous_seq:
            if node.gap_since is None:
                node.gap_since = now
            first = node.contiguous_seq + 1
            nxt = min((s for s in accepted if s > first), default=None)
            if nxt is None or old_max > first:
                session.flush()
                first, last = self._gap_range(session, node)
            else:
                last = nxt - 1
            self._request(node.name, first, last, now, result)
        else:
            node.gap_since = None
        result.messages.append(("node", {"node": node.name}))

    def _walk_stored(
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

    def _gap_range(self, session: Session, node: Node) -> tuple[int, int]:
        first = node.contiguous_seq + 1
        nxt = session.scalar(
            select(StoredEvent.seq)
            .where(StoredEvent.node == node.name, StoredEvent.seq > node.contiguous_seq)
            .order_by(StoredEvent.seq)
            .limit(1)
        )
        return first, (nxt - 1 if nxt is not None else node.max_seq)

    def _request(
        self, node: str, first: int, last: int, now: datetime, result: BatchResult
    ) -> None:
        key = (node, first, last)
        sent = self._resent.get(key)
        if sent is not None and (now - sent).total_seconds() < self.resend_interval_s:
            return
        if len(self._resent) > 10_000:
            self._resent.clear()
        self._resent[key] = now
        result.resends.append(ResendRequest(node, first, last))

    def _event_anomalies(self, event: Event, pending: _Pending) -> None:
        if event.kind not in _ANOMALY_KINDS:
            return
        door = projections.event_refs(event)[1] or "?"
        if event.kind == "door.forced":
            pending.add(
                "door_forced",
                f"{event.node}:{door}",
                node=event.node,
                severity="critical",
                subject=f"door {door} forced open",
                detail={"door": door, "at": event.ts},
            )
        elif event.kind == "door.held_open":
            pending.add(
                "door_held_open",
                f"{event.node}:{door}",
                node=event.node,
                severity="warning",
                subject=f"door {door} held open",
                detail={"door": door, "at": event.ts},
            )
        elif event.kind == "policy.rejected":
            pending.add(
                "policy_rejected",
                event.node,
                node=event.node,
                severity="critical",
                subject=f"{event.node} rejected the policy",
                detail={"reason": str(event.data.get("reason"))[:200]},
            )

    def _raise(
        self, session: Session, pending: _Pending, now: datetime, result: BatchResult
    ) -> None:
        for (kind, key), slot in pending.items.items():
            anomaly, _ = raise_anomaly(
                session,
                kind,
                dedupe_key=key,
                now=now,
                subject=slot["subject"],
                detail=slot["detail"],
                node=slot["node"],
                severity=slot["severity"],
                count=slot["count"],
            )
            result.messages.append(("anomaly", anomaly_dict(anomaly)))
