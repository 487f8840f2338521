"""Each node gets its own signed slice on its own topic: a door gateway only its doors' people
and rules, a print station its printers', a host agent its host's rules and media; no card UID
stands in clear in anything published; a scope change and half the lifetime issue a new
version."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.policy import Policy, card_digest, verify_policy
from controller.policy_slice import card_key_for
from dashboard import services
from dashboard.media import service as media
from dashboard.models.nodes import Node
from dashboard.policy_signer import PolicySigner
from tests.dashboard.conftest import SITE, T0
from tests.dashboard.test_policy_signer import Clock, Sink
from usb_guard.policy import UsbPolicy

ALICE, BOB, CAROL = "0102030405060708", "04A1B2C3D4E5F6", "DEADBEEF"
TTL = 7 * 86400


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def add_node(s: Any, name: str, scope: dict[str, Any]) -> None:
    s.add(Node(name=name, site=SITE, key_status="approved", public_key="k" * 43,
               first_seen_at=T0, health={"policy": {"version": None, "scope": scope}}))


@pytest.fixture
def site(sm) -> None:
    """Two doors on two gateways, a printer, a room PC with a medium; alice may use the server
    room, the printer and pc-01; bob only the lab door; carol only the printer."""
    with sm() as s:
        for door in ("d1", "d2"):
            services.create_door(s, "admin", {"id": door, "name": f"Door {door}"}, now=T0)
        services.create_printer(s, "admin", {"id": "p1", "name": "MFP"}, now=T0)
        rights = {"staff": {"doors": ["d1"], "printers": ["p1"], "hosts": ["pc-01"]},
                  "lab": {"doors": ["d2"]}, "print": {"printers": ["p1"]}}
        for gid, what in rights.items():
            services.create_group(s, "admin", {"id": gid, "name": gid.title(), **what}, now=T0)
        for pid, group, uid in (("alice", "staff", ALICE), ("bob", "lab", BOB),
                                ("carol", "print", CAROL)):
            services.create_person(s, "admin", {
                "id": pid, "name": pid.title(), "groups": [group], "cups_users": [pid],
                "host_accounts": [pid], "operator_ids": [f"op-{pid}"]}, now=T0)
            services.enrol_card(s, "admin", pid, uid, now=T0)
        for hosts in (["pc-01"], ["pc-02"]):
            media.register_medium(s, "admin", {
                "vendor_id": "0781", "product_id": "5581", "serial": f"S{hosts[0]}",
                "token_digest": hosts[0][-1] * 64, "make": "SanDisk", "model": "Ultra",
                "custodian": "alice", "hosts": hosts}, now=T0)
        add_node(s, "gw1", {"doors": ["d1"]})
        add_node(s, "gw2", {"doors": ["d2"]})
        add_node(s, "ps1", {"printers": ["p1"]})
        add_node(s, "pc-01", {"hosts": ["pc-01"], "usb": True})
        s.add(Node(name="gw9", site=SITE, key_status="pending", public_key="p" * 43,
                   first_seen_at=T0, health={"policy": {"scope": {"doors": ["d1", "d2"]}}}))
        s.commit()


def published(sink: Sink) -> dict[str, bytes]:
    return {topic.split("/")[-2]: blob for topic, blob, _retain in sink.sent
            if topic.endswith("/policy") and blob}


def open_slice(blob: bytes, key: Ed25519PrivateKey, node: str) -> Policy:
    policy = verify_policy(blob, [key.public_key()], site=SITE, node=node)
    policy.bind_card_key(card_key_for(key, SITE, node))
    return policy


def test_each_node_gets_only_what_it_decides_on(sm, key, site) -> None:
    sink = Sink()
    PolicySigner(sm, key, site=SITE, publish=sink, clock=Clock(), ttl_s=TTL).publish_now()
    slices = published(sink)
    assert set(slices) == {"gw1", "gw2", "ps1", "pc-01"}  # not the pending gw9
    assert all(t == f"secroom/v1/{SITE}/{n}/policy" for t, _b, _r in sink.sent
               for n in [t.split("/")[-2]] if n in slices)

    gw1 = open_slice(slices["gw1"], key, "gw1")
    assert [p.id for p in gw1.people] == ["alice"]  # not bob (d2), not carol (printer only)
    assert [d.id for d in gw1.doors] == ["d1"] and gw1.printers == []
    assert [(g.id, g.doors, g.printers, g.hosts) for g in gw1.groups] == [
        ("staff", ["d1"], [], [])]
    alice = gw1.person_for_card(ALICE)
    assert alice is not None and alice.id == "alice"
    assert (alice.cups_users, alice.host_accounts, alice.operator_ids) == ([], [], [])
    assert alice.name == "alice"  # ids only: no name leaves the dashboard
    assert gw1.person_for_card(BOB) is None and gw1.usb == UsbPolicy()
    assert gw1.node == "gw1" and gw1.expires_at == T0 + timedelta(seconds=TTL)

    gw2 = open_slice(slices["gw2"], key, "gw2")
    assert [p.id for p in gw2.people] == ["bob"] and gw2.person_for_card(ALICE) is None

    ps1 = open_slice(slices["ps1"], key, "ps1")
    assert sorted(p.id for p in ps1.people) == ["alice", "carol"] and ps1.doors == []
    assert ps1.person_for_card(CAROL).cups_users == ["carol"]

    pc = open_slice(slices["pc-01"], key, "pc-01")
    assert [p.id for p in pc.people] == ["alice"] and pc.doors == [] and pc.printers == []
    assert pc.person_for_account("alice").id == "alice"
    assert [m.hosts for m in pc.usb.media] == [("pc-01",)]  # not the medium of pc-02

    # a slice is no good to another node, and the card digests differ from node to node
    with pytest.raises(Exception, match="wrong_node"):
        verify_policy(slices["gw1"], [key.public_key()], site=SITE, node="gw2")
    assert card_digest(card_key_for(key, SITE, "gw1"), ALICE) in {
        c for p in gw1.people for c in p.cards}
    assert not {c for p in gw1.people for c in p.cards} & {c for p in ps1.people for c in p.cards}


def test_no_card_uid_in_clear_in_anything_published(sm, key, site) -> None:
    sink = Sink()
    PolicySigner(sm, key, site=SITE, publish=sink, clock=Clock(), ttl_s=TTL).publish_now()
    assert len(published(sink)) == 4
    for _topic, blob, _retain in sink.sent:
        text = blob.decode().upper()
        for uid in (ALICE, BOB, CAROL):
            assert uid not in text
        assert "ALICE" not in text.replace('"ALICE"', "")  # the id, never the name "Alice"


def test_a_scope_change_and_half_the_lifetime_issue_a_new_version(sm, key, site) -> None:
    sink, clock = Sink(), Clock()
    signer = PolicySigner(sm, key, site=SITE, publish=sink, clock=clock, ttl_s=TTL)
    assert signer.publish_now() == 1
    assert signer.poll() is None  # nothing changed
    with sm() as s:  # gw1 now also serves d2: the same version with other content is refused
        s.get(Node, "gw1").health = {"policy": {"scope": {"doors": ["d1", "d2"]}}}
        s.commit()
    clock.now = T0 + timedelta(seconds=5)
    assert signer.poll() == 2
    gw1 = open_slice(published(sink)["gw1"], key, "gw1")
    assert gw1.version == 2 and sorted(p.id for p in gw1.people) == ["alice", "bob"]
    clock.now = T0 + timedelta(seconds=TTL / 2 + 6)
    assert signer.poll() == 3  # refreshed before it expires
    assert open_slice(published(sink)["gw1"], key, "gw1").expires_at == clock.now + timedelta(
        seconds=TTL)
