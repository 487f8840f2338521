"""The database-free first step of an ingest batch: route each topic, size limit, parse
(shape and hash), site and topic checks. The consumer runs it on the next batch while the
previous one is being stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from controller.envelope import (
    MAX_EVENT_BYTES,
    TOPIC_ROOT,
    EnvelopeError,
    Event,
    UnsupportedEnvelope,
    parse,
)
from dashboard import projections
from dashboard.ingest.batch import BatchResult, Outcome

MAX_SEQ = 2**62  # fits a signed 64-bit column with room to spare


@dataclass(frozen=True)
class Prepared:
    """What ``IngestCore.prepare`` found in a batch: the rejects (in ``routed``), the parsed
    events and the state messages."""

    routed: BatchResult
    events: list[tuple[str, Event]]
    states: list[tuple[int, str, str, bytes]]
    # node -> envelope version of its events this dashboard cannot read (``bad_version``)
    unsupported: dict[str, int] = field(default_factory=dict)


def _reject_reason(exc: EnvelopeError) -> str:
    text = str(exc)
    if "exceeds" in text:
        return "oversized"
    if "hash" in text:
        return "bad_hash"
    if "schema version" in text:
        return "bad_version"
    return "malformed"


class Preparer:
    def __init__(self, site: str, max_payload: int = MAX_EVENT_BYTES) -> None:
        self.site = site
        self.max_payload = max_payload
        self._prefix = f"{TOPIC_ROOT}/{site}/"

    def prepare(self, items: Sequence[tuple[str, bytes]]) -> Prepared:
        routed = BatchResult()
        events: list[tuple[str, Event]] = []
        states: list[tuple[int, str, str, bytes]] = []
        unsupported: dict[str, int] = {}
        for index, (topic, payload) in enumerate(items):
            self.route(index, topic, payload, routed, events, states, unsupported)
        return Prepared(routed, events, states, unsupported)

    def route(
        self,
        index: int,
        topic: str,
        payload: bytes,
        result: BatchResult,
        events: list[tuple[str, Event]],
        states: list[tuple[int, str, str, bytes]],
        unsupported: dict[str, int] | None = None,
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
        except UnsupportedEnvelope as exc:  # well formed, a version we do not read: raised
            reject("bad_version", parts[0])
            if unsupported is not None:
                unsupported[parts[0]] = exc.version
            return
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
