"""Thread-safe counters of what the ingest accepted and rejected, by reason."""

from __future__ import annotations

import threading
from collections import Counter

REJECT_REASONS = (
    "oversized",  # payload larger than the limit
    "malformed",  # not JSON, not an object, missing or wrongly typed fields (incl. unsigned)
    "bad_hash",  # hash does not match the body
    "bad_version",  # unsupported schema version
    "bad_topic",  # topic is not one of ours
    "wrong_site",  # event or topic names another site
    "topic_mismatch",  # topic node/kind differs from the event's
    "unknown_node",  # no enrolment record for the node
    "node_not_approved",  # node key pending or revoked
    "node_version_unsupported",  # a node older than this dashboard supports (controller.compat)
    "bad_signature",  # signature does not verify with the enrolled key
    "key_revoked",  # signed by a key an admin revoked (controller.keys rotation history)
    "kind_not_allowed",  # a kind the node's approved roles may not emit (controller.events)
    "duplicate",  # same (node, seq) and same hash already stored (dropped silently)
    "fork",  # same (node, seq) with a different hash
    "bad_state",  # state message that is not a JSON object with a valid state
    "internal_error",  # our bug or a DB failure on this one payload (not acked; node re-sends)
)
NOTED = (  # stored (the node signed them; nothing is lost) but not what their kind says
    "invalid_payload",  # data that fails its kind's model (controller.events.KINDS): not projected
    "unknown_kind",  # a kind that no package registers in controller.events.KINDS
)


class IngestCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Counter[str] = Counter()

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._c[key] += n

    def update(self, other: Counter[str]) -> None:
        with self._lock:
            self._c.update(other)

    def get(self, key: str) -> int:
        with self._lock:
            return self._c[key]

    def snapshot(self) -> dict[str, int]:
        """A copy: ``stored``, ``state``, ``rejected`` (total), one key per reject reason and
        the NOTED counts."""
        with self._lock:
            snap = dict(self._c)
        snap["rejected"] = sum(v for k, v in snap.items() if k in REJECT_REASONS)
        return snap
