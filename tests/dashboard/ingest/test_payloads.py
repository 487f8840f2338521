"""The ingest reads payloads as their kind's model (controller.events.KINDS): one that does not fit
is stored all the same (the node signed it), counted and not projected; an unknown kind too."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.envelope import Event
from controller.events import DoorAccess as AccessEvent
from controller.events import NodeClock
from dashboard.ingest.core import IngestCore
from dashboard.models import Anomaly, DoorAccess, Node, StoredEvent
from dashboard.projections import door_access_row
from tests.dashboard.conftest import T0, FakeNode, msg


def run(core: IngestCore, session: Session, events: list[Event]):
    result = core.process(session, [msg(e) for e in events], T0 + timedelta(hours=1))
    session.commit()
    return result


def stored(session: Session) -> dict[int, tuple[str, dict]]:
    return {e.seq: (e.kind, e.data) for e in session.scalars(select(StoredEvent))}


def access_rows(session: Session) -> list[tuple[int, str | None, bool, str | None]]:
    rows = session.scalars(select(DoorAccess).order_by(DoorAccess.seq))
    return [(r.seq, r.person_id, r.granted, r.reason) for r in rows]


def test_a_door_access_with_a_bad_field_is_stored_and_counted_not_projected(
    session: Session, core: IngestCore, node: FakeNode
) -> None:
    node.enrol(session)
    good = node.access("alice", granted=False, reason="not_permitted")
    bogus = {"door": "d1", "reader": "d1-in", "direction": "in", "granted": False,
             "reason": "bogus_reason", "card": "01020304"}  # not a DenialReason
    legacy = {"door": "d1", "reader": "d1-in", "direction": "in", "granted": True,
              "person_id": "bob", "uid": "01020304"}  # "uid" is not a DoorAccess field
    events = [good, node.event("door.access", bogus), node.event("door.access", legacy),
              node.access("carol")]
    result = run(core, session, events)
    assert result.counts["stored"] == 4 and {n: a.seq for n, a in result.acks.items()} == {"gw1": 4}
    assert result.counts["invalid_payload"] == 2
    assert core.counters.snapshot()["invalid_payload"] == 2
    assert core.counters.snapshot()["rejected"] == 0  # stored: not a rejection
    assert stored(session)[2] == ("door.access", bogus)  # kept as the node signed it
    assert stored(session)[3] == ("door.access", legacy)
    assert access_rows(session) == [(1, None, False, "not_permitted"), (4, "carol", True, None)]


def test_an_unknown_kind_is_stored_and_counted(session, core, node) -> None:
    node.enrol(session)
    result = run(core, session, [node.event("door.knock", {"door": "d1"}), node.access("alice")])
    assert result.counts["stored"] == 2 and result.counts["unknown_kind"] == 1
    assert result.counts["invalid_payload"] == 0
    assert stored(session)[1] == ("door.knock", {"door": "d1"})
    assert [row[0] for row in access_rows(session)] == [2]


def test_node_health_is_projected_from_the_model_only(session, core, node) -> None:
    node.enrol(session)
    run(core, session, [node.event("node.clock", NodeClock(state="synced", offset_s=-2.5))])
    n = session.get(Node, "gw1")
    assert (n.clock_state, n.clock_offset_s) == ("synced", -2.5)
    result = run(core, session, [
        node.event("node.clock", {"state": "drifting", "offset_s": 99.0}),  # not a ClockState
        node.event("policy.applied", {"version": 9}),  # key_id, digest... missing
    ])
    assert result.counts["invalid_payload"] == 2 and result.counts["stored"] == 2
    session.refresh(n)
    assert n.clock_offset_s == -2.5 and n.policy_version is None
    run(core, session, [node.applied(9)])
    session.refresh(n)
    assert n.policy_version == 9


def test_a_forced_door_is_raised_even_from_an_invalid_payload(session, core, node) -> None:
    node.enrol(session)
    result = run(core, session, [
        node.event("door.forced", {"door": "d1", "lockdown": False}),
        node.event("door.forced", {"where": "d2"}),  # not a DoorForced: stored, still an alarm
    ])
    assert result.counts["invalid_payload"] == 1
    found = {a.dedupe_key: a for a in session.scalars(
        select(Anomaly).where(Anomaly.kind == "door_forced"))}
    assert set(found) == {"door_forced:gw1:d1", "door_forced:gw1:?"}
    assert found["door_forced:gw1:?"].detail["invalid_payload"] is True
    assert "invalid_payload" not in found["door_forced:gw1:d1"].detail


def test_the_door_access_row_comes_from_the_model() -> None:
    node = FakeNode()
    model = AccessEvent(door="rack", reader="rack-a", direction="in", granted=True,
                        reason=None, person_id="p" * 200, second_person_id="bob",
                        card="0A0B0C0D", policy_version=3)
    row = door_access_row(node.event("door.access", model), model)
    assert row["person_id"] == "p" * 128  # cut to the column
    assert (row["door"], row["reader"], row["uid"], row["second_person_id"]) == (
        "rack", "rack-a", "0A0B0C0D", "bob")
    assert row["seq"] == 1 and row["node"] == "gw1" and row["ts"] == node.ts


def test_a_card_that_failed_its_check_raises_a_review_item_with_card_and_place(
    session, core, node
) -> None:
    node.enrol(session)
    clone = AccessEvent(door="d1", reader="d1-in", direction="in", granted=False,
                        reason="credential_failed", person_id="alice", card="04A1B2C3D4E5F6",
                        credential="failed", card_type="desfire")
    weak = AccessEvent(door="d2", reader="d2-in", direction="in", granted=True,
                       person_id="bob", card="01020304", credential="weak", card_type="uid")
    run(core, session, [node.event("door.access", clone), node.event("door.access", clone),
                        node.event("door.access", weak)])
    items = list(session.scalars(select(Anomaly).where(Anomaly.kind == "credential_failed")))
    assert len(items) == 1  # one open item per card and door, counted
    item = items[0]
    assert (item.place, item.person_id, item.count, item.severity) == ("d1", "alice", 2,
                                                                       "critical")
    assert item.detail["card"] == "04A1B2C3D4E5F6" and item.detail["card_type"] == "desfire"
    assert access_rows(session)[-1] == (3, "bob", True, None)
