"""A central dashboard runs one ingest consumer per site on the same database: each asks only
its own site's nodes for resends (catch-up and open gaps) and raises only their gaps. Before,
every consumer asked every site's nodes on its own site's topics (reaching no node, 1,000 sites
x every node at each catch-up) and took the right consumer's turn for a gap's request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.bus import Bus
from dashboard.ingest.consumer import IngestConsumer
from dashboard.models import Node

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class RecordingLink:
    """Records what the consumer publishes (no broker: this is the consumer's own logic)."""

    stats: dict[str, int] = {}

    def __init__(self) -> None:
        self.published: list[str] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        self.published.append(topic)
        return 1

    def subscribe(self, *args: object, **kwargs: object) -> None:
        pass


def test_each_sites_consumer_asks_and_checks_only_its_own_nodes(sm) -> None:
    with sm.begin() as s:
        for site in ("osaka", "nagoya"):
            s.add(Node(name=f"{site}-gw1", site=site, key_status="approved", public_key="k",
                       roles="door_gateway", first_seen_at=T0, contiguous_seq=5, max_seq=5,
                       gap_since=T0))
    link = RecordingLink()
    c = IngestConsumer(sm, link, site="osaka", bus=Bus(), audit_processes=0)  # type: ignore[arg-type]
    try:
        assert c._catch_up()
        assert link.published == ["secroom/v1/osaka/osaka-gw1/resend"]
        with sm.begin() as s:
            c.core.check_gaps(s, T0 + timedelta(minutes=5), 60)
        with sm() as s:
            # osaka's node was looked at (no gap left: cleared); nagoya's is nagoya's to check
            assert s.get(Node, "osaka-gw1").gap_since is None
            assert s.get(Node, "nagoya-gw1").gap_since is not None
    finally:
        c.audit.close()
