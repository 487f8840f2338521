from __future__ import annotations

from datetime import date, time

import pytest
from sqlalchemy import select

from dashboard import services
from dashboard.audit import verify_audit
from dashboard.models import AuditRecord, Card, Person, SiteSettings
from dashboard.services.site import get_site
from tests.dashboard.conftest import SITE, T0


def audit_actions(session):
    return [
        (r.action, r.target_id)
        for r in session.scalars(select(AuditRecord).order_by(AuditRecord.seq))
    ]


@pytest.fixture
def world(session):
    get_site(session, SITE, now=T0)
    session.execute(SiteSettings.__table__.update().values(policy_dirty=False))
    services.create_door(session, "admin", {"id": "d1", "name": "Server room"}, now=T0)
    services.create_printer(session, "admin", {"id": "p1", "name": "MFP"}, now=T0)
    services.create_group(
        session,
        "admin",
        {
            "id": "staff",
            "name": "Staff",
            "doors": ["d1"],
            "printers": ["p1"],
            "windows": [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "20:00"}],
        },
        now=T0,
    )
    services.create_person(
        session,
        "admin",
        {"id": "alice", "name": "Alice", "groups": ["staff"], "valid_until": "2027-03-31"},
        now=T0,
    )
    session.commit()
    return session


def test_create_records_who_when_before_after(world):
    rec = world.scalars(select(AuditRecord).where(AuditRecord.action == "person.create")).one()
    assert rec.actor == "admin" and rec.at == T0 and rec.before is None
    assert rec.after["groups"] == ["staff"] and rec.after["valid_until"] == "2027-03-31"
    assert world.get(Person, "alice").valid_until == date(2027, 3, 31)


def test_every_change_marks_policy_dirty(world):
    assert world.get(SiteSettings, SITE).policy_dirty is True


def test_update_records_before_and_after(world):
    services.update_person(world, "sec", "alice", {"active": False}, now=T0)
    world.commit()
    rec = world.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)).one()
    assert (rec.action, rec.before["active"], rec.after["active"]) == ("person.update", True, False)


def test_no_op_update_is_not_audited(world):
    n = len(audit_actions(world))
    services.update_person(world, "sec", "alice", {"name": "Alice"}, now=T0)
    assert len(audit_actions(world)) == n


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"id": "bob"}, "name"),
        ({"id": "has space", "name": "x"}, "id"),
        ({"id": "bob", "name": "Bob", "groups": ["nope"]}, "unknown group"),
        (
            {"id": "bob", "name": "Bob", "valid_from": "2027-01-01", "valid_until": "2026-01-01"},
            "before",
        ),
        ({"id": "bob", "name": "Bob", "colour": "red"}, "colour"),
        ({"id": "alice", "name": "Again"}, "already exists"),
    ],
)
def test_person_validation(world, data, fragment):
    with pytest.raises(services.ServiceError, match=fragment):
        services.create_person(world, "admin", data, now=T0)


def test_enrol_and_revoke_card(world):
    card = services.enrol_card(world, "admin", "alice", "01:02:0a:0b", now=T0)
    assert card.uid == "01020A0B" and card.active
    with pytest.raises(services.Conflict, match="already enrolled"):
        services.enrol_card(world, "admin", "alice", "01020a0b", now=T0)
    services.create_person(world, "admin", {"id": "bob", "name": "Bob"}, now=T0)
    with pytest.raises(services.Conflict, match="alice"):
        services.enrol_card(world, "admin", "bob", "01020A0B", now=T0)
    services.revoke_card(world, "admin", "01020A0B", now=T0)
    assert world.get(Card, "01020A0B").active is False
    services.enrol_card(world, "admin", "bob", "01020A0B", now=T0)  # re-issued after revocation
    assert world.get(Card, "01020A0B").person_id == "bob"
    assert [a for a, _ in audit_actions(world) if a.startswith("card.")] == [
        "card.enrol",
        "card.revoke",
        "card.enrol",
    ]


@pytest.mark.parametrize("uid", ["zz", "", "12", "0" * 65])
def test_bad_card_uid(world, uid):
    with pytest.raises(services.ServiceError):
        services.enrol_card(world, "admin", "alice", uid, now=T0)


def test_card_for_unknown_person(world):
    with pytest.raises(services.NotFound):
        services.enrol_card(world, "admin", "nobody", "AABBCCDD", now=T0)


def test_group_windows_and_membership(world):
    services.create_person(world, "admin", {"id": "bob", "name": "Bob"}, now=T0)
    g = services.set_membership(world, "admin", "staff", "bob", True, now=T0)
    assert [p.id for p in g.members] == ["alice", "bob"]
    with pytest.raises(services.ServiceError, match="end must be after"):
        services.update_group(
            world,
            "admin",
            "staff",
            {"windows": [{"days": [0], "start": "10:00", "end": "09:00"}]},
            now=T0,
        )
    g = services.update_group(
        world,
        "admin",
        "staff",
        {"on_holidays": True, "windows": [{"days": [5, 6], "start": "00:00", "end": "00:00"}]},
        now=T0,
    )
    assert [(w.days, w.start, w.end) for w in g.windows] == [([5, 6], time(0), time(0))]
    with pytest.raises(services.NotFound, match="door"):
        services.update_group(world, "admin", "staff", {"doors": ["d9"]}, now=T0)


def test_door_settings_validated(world):
    d = services.update_door(
        world,
        "admin",
        "d1",
        {"two_person": True, "two_person_window_s": 20, "anti_passback": True},
        now=T0,
    )
    assert (d.two_person, d.two_person_window_s, d.anti_passback) == (True, 20, True)
    with pytest.raises(services.ServiceError):
        services.update_door(world, "admin", "d1", {"two_person_window_s": 0}, now=T0)
    with pytest.raises(services.ServiceError):
        services.update_door(world, "admin", "d1", {"two_person": None}, now=T0)


def test_lockdown(world):
    with pytest.raises(services.ServiceError, match="reason"):  # a lockdown needs a reason
        services.set_lockdown(world, "sec", SITE, {"lockdown": False, "doors": ["d1"]}, now=T0)
    s = services.set_lockdown(world, "sec", SITE, {"lockdown": False, "doors": ["d1"],
                                                   "reason": "drill"}, now=T0)
    assert s.lockdown_doors == ["d1"] and s.lockdown_reason == "drill"
    assert s.lockdown_since == T0 and s.lockdown_by == "sec"
    with pytest.raises(services.NotFound):
        services.set_lockdown(world, "sec", SITE, {"lockdown": True, "doors": ["nope"]}, now=T0)
    assert ("site.lockdown", SITE) in audit_actions(world)


def test_actor_required(world):
    with pytest.raises(services.ServiceError, match="actor"):
        services.create_door(world, "", {"id": "d2", "name": "x"}, now=T0)


def test_node_enrolment(world, node):
    node.enrol(world, status="pending")
    with pytest.raises(services.Conflict, match="different key"):
        services.approve_node(world, "admin", "gw1", roles=["door_gateway"],
                              public_key="A" * 43, now=T0)
    n = services.approve_node(world, "admin", "gw1", roles=["door_gateway"],
                              public_key=node.public, now=T0)
    assert n.key_status == "approved" and n.approved_by == "admin"
    with pytest.raises(services.Conflict):
        services.approve_node(world, "admin", "gw1", roles=["door_gateway"], now=T0)
    services.revoke_node(world, "admin", "gw1", now=T0)
    assert ("node.revoke", "gw1") in audit_actions(world)


def test_delete_cascades_and_chain_stays_valid(world):
    services.enrol_card(world, "admin", "alice", "AABB", now=T0)
    services.delete_person(world, "admin", "alice", now=T0)
    services.delete_group(world, "admin", "staff", now=T0)
    services.delete_door(world, "admin", "d1", now=T0)
    services.delete_printer(world, "admin", "p1", now=T0)
    world.commit()
    assert world.get(Card, "AABB") is None
    report = verify_audit(world)
    assert report.ok and report.records == len(audit_actions(world))
