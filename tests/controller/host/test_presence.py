"""Signed presence statements and the doors' own events, as the host agent reads them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.envelope import GENESIS, canonical_json, seal
from controller.host.presence import (
    PresenceError,
    PresenceView,
    door_moves,
    open_presence,
)
from controller.keys import public_b64
from controller.policy import sign_policy
from tests.controller.host.fixtures import MONDAY_10, SITE, make_policy, presence_blob

KEY = Ed25519PrivateKey.generate()
GATE = Ed25519PrivateKey.generate()


def statement(present=("hana",), serial=1, at=MONDAY_10, nodes=None):
    return open_presence(presence_blob(KEY, list(present), serial=serial, issued_at=at,
                                       door_nodes=nodes or {"gw1": public_b64(GATE.public_key())}),
                         [KEY.public_key()], site=SITE)


def door_event(person: str, direction: str, at, key=GATE, node="gw1", granted=True) -> bytes:
    return seal(key, node=node, site=SITE, seq=1, ts=at, boot="b", clock="synced",
                kind="door.access", data={"door": "room", "reader": "r", "direction": direction,
                                          "granted": granted, "person_id": person},
                prev=GENESIS).to_bytes()


def test_statement_round_trips() -> None:
    st = statement(["hana", "kenji"])
    assert st.present == ["hana", "kenji"] and st.serial == 1


@pytest.mark.parametrize(("blob", "match"), [
    (b"not json", "not JSON"),
    (canonical_json({"presence": {}}), "not a signed"),
    (presence_blob(Ed25519PrivateKey.generate(), []), "untrusted"),
    (presence_blob(KEY, [], site="elsewhere"), "site"),
    # a policy signature is not a presence signature (different context)
    (sign_policy(make_policy(), KEY).replace(b'"policy"', b'"presence"'), "signature|malformed"),
])
def test_bad_statements_are_refused(blob, match) -> None:
    with pytest.raises(PresenceError, match=match):
        open_presence(blob, [KEY.public_key()], site=SITE)


def test_tampered_statement_is_refused() -> None:
    blob = presence_blob(KEY, ["hana"]).replace(b'"hana"', b'"kenj"')
    with pytest.raises(PresenceError, match="signature"):
        open_presence(blob, [KEY.public_key()], site=SITE)


def test_view_in_out_and_unknown_when_stale_or_absent() -> None:
    view = PresenceView(max_age_s=300)
    assert view.state("hana", MONDAY_10) == "unknown"
    view.offer(statement(), MONDAY_10)
    assert view.state("hana", MONDAY_10) == "in"
    assert view.state("kenji", MONDAY_10) == "out"
    assert view.state("hana", MONDAY_10 + timedelta(seconds=300)) == "in"  # near miss
    assert view.state("hana", MONDAY_10 + timedelta(seconds=301)) == "unknown"
    assert view.state("hana", MONDAY_10 - timedelta(seconds=61)) == "unknown"  # from the future


def test_newer_statement_reports_who_left_and_older_ones_are_ignored() -> None:
    view = PresenceView(max_age_s=300)
    view.offer(statement(["hana", "kenji"], serial=2), MONDAY_10)
    assert view.offer(statement(["kenji"], serial=1), MONDAY_10) == []  # older: ignored
    assert view.state("hana", MONDAY_10) == "in"
    assert view.offer(statement(["kenji"], serial=3), MONDAY_10) == ["hana"]


def test_door_events_move_people_at_once_and_beat_an_older_statement() -> None:
    view = PresenceView(max_age_s=300)
    st = statement(["hana"])
    view.offer(st, MONDAY_10)
    moves = door_moves(door_event("hana", "out", MONDAY_10 + timedelta(seconds=5)), st,
                       site=SITE)
    assert view.move(moves) == ["hana"]
    assert view.state("hana", MONDAY_10 + timedelta(seconds=6)) == "out"
    # a tap from before the statement changes nothing
    old = door_moves(door_event("kenji", "in", MONDAY_10 - timedelta(seconds=5)), st, site=SITE)
    assert view.move(old) == [] and view.state("kenji", MONDAY_10) == "out"
    # the dashboard gone: a door entry after the stale statement still says where one is
    late = MONDAY_10 + timedelta(hours=2)
    view.move(door_moves(door_event("kenji", "in", late), st, site=SITE))
    assert view.state("kenji", late) == "in" and view.state("hana", late) == "out"


def test_door_events_need_a_key_the_statement_vouches_for() -> None:
    st = statement()
    with pytest.raises(PresenceError, match="not vouched"):
        door_moves(door_event("hana", "out", MONDAY_10, node="gw9"), st, site=SITE)
    forged = door_event("hana", "out", MONDAY_10, key=Ed25519PrivateKey.generate())
    with pytest.raises(PresenceError, match="signature"):
        door_moves(forged, st, site=SITE)
    with pytest.raises(PresenceError, match="no presence statement"):
        door_moves(door_event("hana", "out", MONDAY_10), None, site=SITE)
    assert door_moves(door_event("hana", "out", MONDAY_10, granted=False), st, site=SITE) == []
