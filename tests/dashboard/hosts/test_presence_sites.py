"""A central dashboard publishes one presence statement per site: each lists the people inside
that site's rooms and that site's door nodes, never another site's (a person inside the Nagoya
room is not inside the Osaka room, whose host agents would otherwise keep their sessions open)."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dashboard.hosts.presence import PresencePublisher
from dashboard.models import Node
from dashboard.models.events import DoorAccess, Presence

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_each_site_statement_holds_its_own_rooms_only(sm) -> None:
    with sm.begin() as s:
        for i, site in enumerate(("osaka", "nagoya")):
            node = f"{site}-gw1"
            s.add(Node(name=node, site=site, key_status="approved", public_key=f"key-{site}",
                       roles="door_gateway", first_seen_at=T0))
            s.add(DoorAccess(node=node, seq=7, ts=T0, door=f"door-{site}", direction="in",
                             granted=True, person_id=f"p-{site}"))
            s.add(Presence(person_id=f"p-{site}", door=f"door-{site}", entered_at=T0,
                           enter_ref=f"{node}:7"))
            s.add(Presence(person_id=f"gone-{i}", door=f"door-{site}", entered_at=T0,
                           left_at=T0, enter_ref=f"{node}:1"))
    sent: list[tuple[str, bytes, bool]] = []
    key = Ed25519PrivateKey.generate()
    for site in ("osaka", "nagoya"):
        pub = PresencePublisher(sm, key, site=site,
                                publish=lambda t, b, r: sent.append((t, b, r)))
        st = pub.statement()
        assert st.present == [f"p-{site}"]
        assert st.door_nodes == {f"{site}-gw1": f"key-{site}"}
        pub.publish_now()
        assert sent[-1][0] == f"secroom/v1/{site}/presence"
