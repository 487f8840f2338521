"""Ledger services: numbers never reused, lifecycle enforced with clear errors, second-person
approval, every change audited and recorded, overdue media raise an anomaly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dashboard.audit import verify_audit
from dashboard.auth.service import AuthService
from dashboard.media import service
from dashboard.media.approval import ApprovalError, verify_approver
from dashboard.media.overdue import KIND, loans, raise_overdue
from dashboard.models.anomalies import Anomaly
from dashboard.models.audit import AuditRecord
from dashboard.models.media import Medium, MediumRecord
from dashboard.models.people import SiteSettings
from dashboard.services import NotFound, get_site
from tests.dashboard.media.conftest import NOW, add_people, medium_data
from tests.dashboard.web.conftest import PASSWORD, add_user, make_settings
from usb_guard.ledger import ControlNumbering

DUE = NOW + timedelta(days=2)


@pytest.fixture
def db(session: Session) -> Session:
    add_people(session)
    session.commit()
    return session


def register(db: Session, **over: object) -> Medium:
    row = service.register_medium(db, "admin1", medium_data(**over), now=NOW)
    db.commit()
    return row


def checkout(db: Session, cn: str, *, actor: str = "admin1", approver: str = "sec2",
             holder: str = "p2", now=NOW) -> Medium:  # type: ignore[no-untyped-def]
    row = service.check_out(db, actor, cn, {"holder": holder, "purpose": "年末調整の提出",
                                            "due_back": DUE, "approved_by": approver}, now=now)
    db.commit()
    return row


def test_numbers_are_sequential_padded_and_never_reused(db: Session) -> None:
    numbers = [register(db).control_number for _ in range(3)]
    assert numbers == ["USB-0001", "USB-0002", "USB-0003"]
    # dispose of the newest, then remove its rows outright: its number stays spent
    service.dispose_medium(db, "admin1", "USB-0003", {"method": "Destroy",
                           "certificate_number": "D-1", "verifier": "sec2"}, now=NOW)
    db.commit()
    db.execute(delete(MediumRecord).where(MediumRecord.control_number == "USB-0003"))
    db.execute(delete(Medium).where(Medium.control_number == "USB-0003"))
    db.commit()
    assert register(db).control_number == "USB-0004"
    other = service.register_medium(db, "admin1", medium_data(), now=NOW,
                                    numbering=ControlNumbering(prefix="HDD-", width=3))
    assert other.control_number == "HDD-001"


def test_same_token_cannot_be_registered_twice(db: Session) -> None:
    first = register(db)
    with pytest.raises(service.Conflict, match=first.control_number):
        service.register_medium(db, "admin1", medium_data(token_digest=first.token_digest),
                                now=NOW)


def test_registration_needs_a_known_custodian_and_a_valid_identity(db: Session) -> None:
    with pytest.raises(NotFound, match="custodian"):
        service.register_medium(db, "admin1", medium_data(custodian="nobody"), now=NOW)
    with pytest.raises(service.ServiceError, match="vendor_id"):
        service.register_medium(db, "admin1", medium_data(vendor_id="xyz1"), now=NOW)


def test_invalid_transitions_are_refused_with_the_state_and_what_is_allowed(db: Session) -> None:
    cn = register(db).control_number  # registered then stored
    with pytest.raises(service.MediaError,
                       match=r"USB-0001 is in_storage: cannot return \(allowed now: "
                             r"check_out, dispose, mark_lost, wipe\)"):
        service.return_medium(db, "admin1", cn, now=NOW)
    db.rollback()
    checkout(db, cn)
    with pytest.raises(service.MediaError, match="checked_out: cannot wipe"):
        service.wipe_medium(db, "admin1", cn, {"method": "Clear", "technique": "overwrite",
                            "tool": "nwipe 0.34", "verifier": "sec2",
                            "verification": "full read-back"}, now=NOW)
    db.rollback()
    with pytest.raises(service.MediaError, match="can only be disposed of by Destroy"):
        service.return_medium(db, "admin1", cn, now=NOW)
        service.dispose_medium(db, "admin1", cn, {"method": "Clear", "certificate_number": "C",
                               "verifier": "sec2"}, now=NOW)
    db.rollback()
    assert db.get(Medium, cn).state == "checked_out"  # nothing of the refused steps stored


def test_check_out_needs_a_second_person(db: Session) -> None:
    cn = register(db).control_number
    with pytest.raises(service.MediaError, match="second person"):
        checkout(db, cn, actor="admin1", approver="admin1")
    db.rollback()
    with pytest.raises(service.MediaError, match="approve a check-out to themselves"):
        checkout(db, cn, approver="p2", holder="p2")
    db.rollback()
    with pytest.raises(NotFound, match="holder"):
        checkout(db, cn, holder="ghost")
    db.rollback()
    row = checkout(db, cn)
    assert (row.state, row.holder, row.requested_by, row.approved_by) == \
        ("checked_out", "p2", "admin1", "sec2")


def test_every_change_is_recorded_and_audited(db: Session) -> None:
    cn = register(db).control_number
    checkout(db, cn)
    service.return_medium(db, "admin1", cn, {"note": "ok"}, now=NOW + timedelta(days=1))
    service.wipe_medium(db, "admin1", cn, {"method": "Purge", "technique": "block erase",
                        "tool": "hdparm 9.65", "verifier": "sec2",
                        "verification": "sample read"}, now=NOW + timedelta(days=1))
    service.dispose_medium(db, "admin1", cn, {"method": "Destroy", "certificate_number": "D-77",
                           "destination": "destroyed", "verifier": "sec2"},
                           now=NOW + timedelta(days=2))
    db.commit()
    records = db.scalars(select(MediumRecord).order_by(MediumRecord.id)).all()
    assert [(r.action, r.from_state, r.to_state) for r in records] == [
        ("register", None, "registered"), ("store", "registered", "in_storage"),
        ("check_out", "in_storage", "checked_out"), ("return", "checked_out", "returned"),
        ("wipe", "returned", "wiped"), ("dispose", "wiped", "disposed")]
    out = records[2]
    assert (out.holder, out.purpose, out.due_back, out.approved_by) == \
        ("p2", "年末調整の提出", DUE, "sec2")
    assert (records[4].method, records[4].verifier) == ("Purge", "sec2")
    assert (records[5].certificate_number, records[5].method) == ("D-77", "Destroy")
    audits = db.scalars(select(AuditRecord).where(AuditRecord.target_type == "medium")
                        .order_by(AuditRecord.seq)).all()
    assert [a.action for a in audits] == [f"medium.{r.action}" for r in records]
    assert audits[2].before["state"] == "in_storage"
    assert audits[2].after["state"] == "checked_out"
    assert verify_audit(db).ok
    with pytest.raises(service.MediaError, match="disposed"):
        service.store_medium(db, "admin1", cn, now=NOW)


def test_changes_mark_the_policy_dirty(db: Session) -> None:
    get_site(db, "site1", now=NOW)
    db.query(SiteSettings).update({"policy_dirty": False})
    db.commit()
    register(db)
    assert db.scalar(select(SiteSettings.policy_dirty)) is True


def test_overdue_media_raise_one_anomaly_until_returned(db: Session) -> None:
    cn = register(db).control_number
    checkout(db, cn)
    assert raise_overdue(db, DUE - timedelta(minutes=1)) == []
    late = DUE + timedelta(hours=5)
    (anomaly,) = raise_overdue(db, late)
    db.commit()
    assert anomaly.kind == KIND == "media_overdue"
    assert anomaly.detail["control_number"] == cn and anomaly.detail["holder"] == "p2"
    assert anomaly.detail["overdue_hours"] == 5
    raise_overdue(db, late + timedelta(hours=1))
    db.commit()
    assert db.scalar(select(func.count()).select_from(Anomaly)) == 1
    assert db.scalar(select(Anomaly.count)) == 2
    assert loans(db, NOW, DUE) == [loans(db, NOW, DUE)[0]]
    assert loans(db, NOW, DUE)[0].returned_at is None
    back = late + timedelta(hours=2)
    service.return_medium(db, "admin1", cn, now=back)
    db.commit()
    assert raise_overdue(db, back + timedelta(days=1)) == []
    (loan,) = loans(db, NOW, DUE)
    assert (loan.control_number, loan.holder, loan.due_back, loan.returned_at) == \
        (cn, "p2", DUE, back)


def test_approver_must_prove_who_they_are(tmp_path, sm) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path)
    for name, role in (("req", "admin"), ("sec2", "security_admin"), ("aud", "auditor")):
        add_user(sm, settings, name, role)
    auth = AuthService(settings, sm)

    def approve(approver: str, password: str = PASSWORD) -> str:
        return verify_approver(auth, requester="req", approver=approver, password=password,
                               ip="10.0.0.9", now=NOW)

    assert approve("sec2") == "sec2"
    with pytest.raises(ApprovalError, match="second person"):
        approve("req")
    with pytest.raises(ApprovalError, match="name or password is wrong"):
        approve("sec2", "guess")
    with pytest.raises(ApprovalError, match="name or password is wrong"):
        approve("nobody")
    with pytest.raises(ApprovalError, match="may not approve"):
        approve("aud")
    with pytest.raises(ApprovalError, match="password"):
        approve("sec2", "")
    for _ in range(settings.login_throttle.max_failures_per_user):
        with pytest.raises(ApprovalError):
            approve("sec2", "guess")
    with pytest.raises(ApprovalError, match="too many failed attempts"):
        approve("sec2")  # the right password no longer helps: the throttle applies
