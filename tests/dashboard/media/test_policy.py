"""The ledger reaches the nodes: build_usb_policy -> Policy.usb -> signed -> verified, with every
medium's identity, token digest, state, hosts and read-only flag; a state change shows up."""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from controller.policy import Policy, sign_policy, verify_policy
from dashboard.db import make_sessionmaker
from dashboard.media import service
from dashboard.media.policy import build_usb_policy
from dashboard.policy_signer import PolicySigner
from tests.dashboard.media.conftest import NOW, add_people, medium_data
from usb_guard.policy import DEFAULT_CLASS_RULES, UsbPolicy
from usb_guard.usbguard_rules import export_rules

KEY = Ed25519PrivateKey.generate()


def signed_round_trip(session: Session, version: int) -> Policy:
    """What the signer does once it embeds ``usb=build_usb_policy(session)``."""
    signer = PolicySigner(make_sessionmaker(session.get_bind()), KEY, site="site1",
                          publish=None, clock=lambda: NOW)
    base = signer.build(session, version=version, issued_at=NOW)
    policy = Policy.model_validate({**base.model_dump(), "usb": build_usb_policy(session)})
    return verify_policy(sign_policy(policy, KEY), [KEY.public_key()], site="site1")


def test_policy_without_usb_still_verifies_with_an_empty_ledger(session: Session) -> None:
    got = signed_round_trip(session, 1)
    assert got.usb == UsbPolicy()
    assert got.usb.class_rules == DEFAULT_CLASS_RULES and got.usb.default == "block"


def test_ledger_media_travel_in_the_signed_policy(session: Session) -> None:
    add_people(session)
    a = service.register_medium(session, "admin1", medium_data(hosts=["pc-01", "pc-02"],
                                read_only=True), now=NOW)
    b = service.register_medium(session, "admin1", medium_data(serial=None), now=NOW)
    session.commit()
    usb = signed_round_trip(session, 1).usb
    by_number = {m.control_number: m for m in usb.media}
    assert set(by_number) == {a.control_number, b.control_number}
    ma = by_number[a.control_number]
    assert (ma.state, ma.hosts, ma.read_only, ma.token_digest) == \
        ("in_storage", ("pc-01", "pc-02"), True, a.token_digest)
    assert (ma.identity.vendor_id, ma.identity.serial, ma.identity.descriptors_sha256) == \
        (a.vendor_id, a.serial, a.descriptors_sha256)
    assert by_number[b.control_number].identity.serial is None

    service.check_out(session, "admin1", a.control_number,
                      {"holder": "p2", "purpose": "監査資料", "approved_by": "sec2",
                       "due_back": NOW + timedelta(days=1)}, now=NOW)
    service.mark_lost(session, "admin1", b.control_number, now=NOW)
    session.commit()
    usb = signed_round_trip(session, 2).usb
    states = {m.control_number: m.state for m in usb.media}
    assert states == {a.control_number: "checked_out", b.control_number: "lost"}
    rules = export_rules(usb, "pc-01", NOW)
    assert f"# {b.control_number} left out: state lost" in rules
