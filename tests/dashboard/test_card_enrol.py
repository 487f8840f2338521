"""Blank-card enrolment on the dashboard: the request (checked, audited, one per reader, a
growing counter per node), the signed command the sender publishes, and the request closed
from the node's card.enrolment events (card registered to the person, audited), expired when
nobody answers; card.rekeyed moves a card's key id. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from controller.receipts import open_enrol
from dashboard import services
from dashboard.card_enrol import EnrolSender, request_enrolment
from dashboard.models import AuditRecord, Card, Node, StoredEvent
from dashboard.models.card_enrol import CardEnrolment
from dashboard.services.base import Conflict, ServiceError
from tests.dashboard.conftest import SITE, T0
from tests.dashboard.test_policy_signer import Clock, Sink

READER = "Virtual PCD 00 00"


@pytest.fixture
def office(sm) -> None:
    with sm.begin() as s:
        services.create_person(s, "admin", {"id": "bob", "name": "山田 太郎"}, now=T0)
        for name, status, roles in (("gw1", "approved", "door_gateway"),
                                    ("gw9", "pending", "door_gateway"),
                                    ("pc-01", "approved", "host_agent")):
            s.add(Node(name=name, site=SITE, key_status=status, public_key="k" * 43,
                       first_seen_at=T0, roles=roles))


def node_event(s: Any, seq: int, kind: str, data: dict[str, Any], node: str = "gw1") -> None:
    s.add(StoredEvent(node=node, seq=seq, kind=kind, ts=T0 + timedelta(seconds=seq),
                      received_at=T0, boot="b", clock="synced", data=data, prev="0" * 64,
                      hash=f"{seq:064d}", sig="s" * 86))


def actions(s: Any) -> list[str]:
    return [a.action for a in s.scalars(select(AuditRecord).order_by(AuditRecord.seq))
            if a.action.startswith("card.")]


def test_a_request_names_an_approved_door_gateway_and_one_reader_at_a_time(sm, office) -> None:
    with sm.begin() as s:
        for node in ("gw9", "pc-01", "nowhere"):
            with pytest.raises(ServiceError, match="approved door gateway"):
                request_enrolment(s, "admin", "bob", node, READER, now=T0)
        first = request_enrolment(s, "admin", "bob", "gw1", READER, now=T0, label="社員証")
        with pytest.raises(Conflict, match="already waiting"):
            request_enrolment(s, "admin", "bob", "gw1", READER, now=T0)
        second = request_enrolment(s, "admin", "bob", "gw1", "Virtual PCD 00 01", now=T0)
        assert (first.counter, second.counter) == (1, 2)
        with pytest.raises(ServiceError, match="no person"):
            request_enrolment(s, "admin", "nobody", "gw1", "x", now=T0)
        assert actions(s) == ["card.personalise_request", "card.personalise_request"]


def test_the_sender_signs_the_command_and_registers_the_personalised_card(sm, office) -> None:
    key, sink, clock = Ed25519PrivateKey.generate(), Sink(), Clock()
    sender = EnrolSender(sm, key, site=SITE, publish=sink, clock=clock)
    with sm.begin() as s:
        req = request_enrolment(s, "admin", "bob", "gw1", READER, now=T0, label="社員証").id
    sender.poll()
    [(topic, blob, retain)] = sink.sent
    assert (topic, retain) == (f"secroom/v1/{SITE}/gw1/enrol", False)
    cmd = open_enrol(blob, [key.public_key()], site=SITE, node="gw1")
    assert (cmd.reader, cmd.request, cmd.counter) == (READER, req, 1)
    sender.poll()
    assert len(sink.sent) == 1  # sent once

    with sm.begin() as s:
        node_event(s, 1, "card.enrolment", {"request": req, "reader": READER,
                                            "outcome": "waiting", "detail": ""})
    sender.poll()
    with sm() as s:
        assert s.get(CardEnrolment, req).state == "waiting"
    with sm.begin() as s:
        node_event(s, 2, "card.enrolment", {
            "request": req, "reader": READER, "outcome": "personalised",
            "card": "04C0FFEE112233", "card_type": "desfire", "key_id": "ck-1", "detail": ""})
    sender.poll()
    with sm() as s:
        row = s.get(CardEnrolment, req)
        assert (row.state, row.uid, row.card_type, row.key_id) == (
            "personalised", "04C0FFEE112233", "desfire", "ck-1")
        card = s.get(Card, "04C0FFEE112233")
        assert (card.person_id, card.credential, card.key_id, card.label) == (
            "bob", "desfire", "ck-1", "社員証")
        assert actions(s) == ["card.personalise_request", "card.enrol",
                              "card.personalise_done"]

    # the changeover: the node re-keyed the card at a tap
    with sm.begin() as s:
        node_event(s, 3, "card.rekeyed", {"reader": READER, "card": "04C0FFEE112233",
                                          "card_type": "desfire", "key_id": "ck-2",
                                          "previous_key": "ck-1"})
    sender.poll()
    sender.poll()
    with sm() as s:
        assert s.get(Card, "04C0FFEE112233").key_id == "ck-2"
        assert actions(s)[-1] == "card.rekey" and actions(s).count("card.rekey") == 1


def test_each_sites_sender_serves_only_its_sites_nodes(sm, office) -> None:
    """A central dashboard runs one sender per site, each publishing on its site's link."""
    key, home, other, clock = Ed25519PrivateKey.generate(), Sink(), Sink(), Clock()
    with sm.begin() as s:
        s.add(Node(name="osaka-gw1", site="osaka", key_status="approved", public_key="k" * 43,
                   first_seen_at=T0, roles="door_gateway"))
    with sm.begin() as s:
        here = request_enrolment(s, "admin", "bob", "gw1", READER, now=T0).id
        there = request_enrolment(s, "admin", "bob", "osaka-gw1", READER, now=T0).id
    EnrolSender(sm, key, site=SITE, publish=home, clock=clock).poll()
    EnrolSender(sm, key, site="osaka", publish=other, clock=clock).poll()
    [(topic, blob, _)] = home.sent
    assert topic == f"secroom/v1/{SITE}/gw1/enrol"
    assert open_enrol(blob, [key.public_key()], site=SITE, node="gw1").request == here
    [(topic, blob, _)] = other.sent
    assert topic == "secroom/v1/osaka/osaka-gw1/enrol"
    assert open_enrol(blob, [key.public_key()], site="osaka", node="osaka-gw1").request == there


def test_failures_and_silence_close_the_request_without_a_card(sm, office) -> None:
    key, sink, clock = Ed25519PrivateKey.generate(), Sink(), Clock()
    sender = EnrolSender(sm, key, site=SITE, publish=sink, clock=clock)
    with sm.begin() as s:
        failed = request_enrolment(s, "admin", "bob", "gw1", READER, now=T0).id
    sender.poll()
    with sm.begin() as s:
        node_event(s, 1, "card.enrolment", {
            "request": failed, "reader": READER, "outcome": "failed", "card": "04AA",
            "card_type": "desfire", "detail": "the card already holds a secroom application"})
        silent = request_enrolment(s, "admin", "bob", "gw1", "Virtual PCD 00 01", now=T0).id
    sender.poll()
    clock.now += timedelta(seconds=200)  # past the wait and the grace: nobody answered
    sender.poll()
    with sm() as s:
        assert s.get(CardEnrolment, failed).state == "failed"
        assert "secroom application" in s.get(CardEnrolment, failed).detail
        assert s.get(CardEnrolment, silent).state == "expired"
        assert s.scalar(select(Card).where(Card.person_id == "bob")) is None
        assert actions(s).count("card.personalise_failed") == 2
