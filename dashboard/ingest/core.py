"""The ingest core: a batch of (topic, payload) in, stored events, projections and outcomes out.

No MQTT and no clock here: the caller passes a session and ``now``, commits, then publishes the acks
and resend requests of the returned ``BatchResult`` (so an ack never runs ahead of a commit). Steps
per batch: route the topic, size limit, parse (shape and hash), site and topic checks (``Preparer``:
no database, so the consumer overlaps it with the previous batch's storing), then enrolled and
approved node, the key that signs the seq (``trust.signer``: a rotated node's earlier key below its
handover, a revoked key refused), signature, the node's roles (``trust.kind_refusal``: a kind its
roles may not report is refused, counted and raised); then the stored neighbours each node's events
need (``_lookup``), and per node in seq order, with no query meanwhile (on PostgreSQL the rows
stream into a COPY as they are accepted): duplicate or fork against what is stored, chain link to
seq-1 and seq+1, insert (``_accept``, which also validates the payloads the ingest projects with
their kind's model and projects node health and door alarms from them); then each node's contiguous
mark (ack) and gaps (resend request; anomaly later if not filled) (``ChainMarks.settle``); then door
access and presence. The steps before the database are in prepare.py, the payloads in payloads.py,
the marks in marks.py.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.envelope import GENESIS, MAX_EVENT_BYTES, Event
from controller.events import KINDS
from controller.events import DoorAccess as AccessEvent
from dashboard import projections
from dashboard.anomalies import anomaly_dict, raise_anomaly
from dashboard.bulk import row_writer
from dashboard.ingest import compat, payloads, trust
from dashboard.ingest.batch import BatchResult, Outcome, PendingAnomalies, ResendRequest
from dashboard.ingest.counters import IngestCounters
from dashboard.ingest.marks import ChainMarks
from dashboard.ingest.prepare import MAX_SEQ, Prepared, Preparer
from dashboard.ingest.state import StateHandler
from dashboard.ingest.verify import SignatureVerifier
from dashboard.models.events import StoredEvent
from dashboard.models.nodes import Node

__all__ = ["MAX_SEQ", "BatchResult", "IngestCore", "Outcome", "Prepared", "ResendRequest"]


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
        self.marks = ChainMarks(resend_interval_s)
        self.preparer = Preparer(site, max_payload)

    # -- public ------------------------------------------------------------------------------

    def prepare(self, items: Sequence[tuple[str, bytes]]) -> Prepared:
        """The database-free first step of a batch: route, size limit, parse, site and topic
        checks. The consumer runs it on the next batch while this one is being stored."""
        return self.preparer.prepare(items)

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
        pending = PendingAnomalies()
        for index, topic, node_name, payload in prepared.states:
            reason = self.state.apply(session, node_name, payload, now, pending)
            status = "state" if reason is None else "rejected"
            result.outcomes.append(Outcome(topic, status, reason, node_name, None, index))
            result.counts["state" if reason is None else reason] += 1
            if reason is None:
                compat.check_state(session, node_name, pending)
                result.messages.append(("node", {"node": node_name}))
        compat.raise_envelopes(session, prepared.unsupported, pending)
        if prepared.events:
            self._process_events(session, prepared.events, now, result, pending)
        self._raise(session, pending, now, result)
        session.flush()
        self.counters.update(result.counts)
        result.outcomes.sort(key=lambda o: o.index)
        result.index_of.clear()
        result.unchecked_keys.clear()
        return result

    def check_gaps(self, session: Session, now: datetime, gap_timeout_s: float, *,
                   only: Collection[str] | None = None) -> BatchResult:
        """Re-ask for unfilled gaps; raise a gap anomaly for any older than ``gap_timeout_s``.
        This site's nodes only: a central dashboard runs one consumer per site, and a request
        on another site's topic would reach no node while taking the right consumer's turn.
        ``only``: just these nodes (a replica, the nodes it holds the lease of)."""
        result = BatchResult()
        pending = PendingAnomalies()
        query = select(Node).where(Node.gap_since.is_not(None), Node.key_status == "approved",
                                   Node.site == self.site)
        if only is not None:
            query = query.where(Node.name.in_(sorted(only)))
        for node in session.scalars(query):
            first, last = self.marks.gap_range(session, node)
            if first > last:
                node.gap_since = None
                continue
            self.marks.request(node, first, last, now, result)
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
        pending = PendingAnomalies()
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

    # -- events ------------------------------------------------------------------------------

    def _process_events(
        self,
        session: Session,
        events: list[tuple[str, Event]],
        now: datetime,
        result: BatchResult,
        pending: PendingAnomalies,
    ) -> None:
        names = sorted({e.node for _, e in events})
        nodes = {n.name: n for n in session.scalars(select(Node).where(Node.name.in_(names)))}
        refused = {name: compat.problem_of(n) for name, n in nodes.items()}
        past = trust.past_keys(session, nodes)
        approvals = {name: trust.Approval.of(n) for name, n in nodes.items()}
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
            signer = trust.signer(approvals[node.name], event.seq, past.get(node.name, ()))
            if signer == trust.REVOKED:
                self._reject(result, topic, event, "key_revoked")
                pending.add(
                    "key_revoked",
                    node.name,
                    node=node.name,
                    severity="critical",
                    subject=f"{node.name}: events signed by a revoked key",
                    detail={"last_seq": event.seq},
                )
                continue
            key = self.verifier.key(signer) if signer else None
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
            problem = refused[node.name]
            if problem is not None:  # kept by the node until it is upgraded
                self._reject(result, topic, event, compat.KIND)
                compat.raise_unsupported(pending, node.name, problem, {})
                continue
            to_verify.append((topic, event))
            keys.append(key)
        ok, unchecked = self.verifier.verify_events(
            [(k, e) for k, (_, e) in zip(keys, to_verify, strict=True)]
        )
        result.unchecked_keys = {id(to_verify[i][1]): keys[i] for i in unchecked}
        by_node: dict[str, list[tuple[str, Event]]] = defaultdict(list)
        for good, (topic, event) in zip(ok, to_verify, strict=True):
            if good and not self._may_emit(approvals[event.node], topic, event, result,
                                           pending):
                continue
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
            self.marks.settle(session, nodes[name], events_of, old_max, now, result)
        projections.store_door_access(session, access + late_access, late_access)

    def _may_emit(self, node: trust.Approval, topic: str, event: Event, result: BatchResult,
                  pending: PendingAnomalies) -> bool:
        refusal = trust.kind_refusal(node, event)
        if refusal is None:
            return True
        self._reject(result, topic, event, "kind_not_allowed")
        pending.add("kind_not_allowed", node.name, node=node.name, severity="critical", **refusal)
        return False

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
        pending: PendingAnomalies,
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
            kind = event.kind
            if kind in payloads.PROJECTED:  # stored already; projected from its model
                data = payloads.validated(event)
                if data is None:
                    result.counts["invalid_payload"] += 1
                elif isinstance(data, AccessEvent):
                    row = projections.door_access_row(event, data)
                    (late_access if seq < old_max else access).append(row)
                    if data.reason == "credential_failed":
                        payloads.raise_credential_failed(event, data, pending)
                elif kind in projections.HEALTH_KINDS:
                    projections.apply_node_health(node, event, data)
                if kind in payloads.ALARM_KINDS:
                    payloads.raise_alarm(event, data, pending)
            elif kind not in KINDS:
                result.counts["unknown_kind"] += 1
        return accepted, old_max

    def _raise(
        self, session: Session, pending: PendingAnomalies, now: datetime, result: BatchResult
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
                person_id=slot["detail"].get("person_id"),
            )
            result.messages.append(("anomaly", anomaly_dict(anomaly)))
