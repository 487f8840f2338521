"""From the dashboard's ledger to the USB agent: a medium registered and stored in the dashboard
works on the simulated host once the signed node policy carries it; marked lost in the
dashboard, the next signed policy makes the agent remove it."""

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
from tests.usb_guard.conftest import HOST, Harness
from usb_guard.medium_token import MediumToken, new_token, token_digest
from usb_guard.simulated import storage_stick

KEY = Ed25519PrivateKey.generate()


def node_policy(session: Session, version: int) -> Policy:
    signer = PolicySigner(make_sessionmaker(session.get_bind()), KEY, site="site1",
                          publish=None, clock=lambda: NOW)
    base = signer.build(session, version=version, issued_at=NOW)
    policy = Policy.model_validate({**base.model_dump(), "usb": build_usb_policy(session)})
    return verify_policy(sign_policy(policy, KEY), [KEY.public_key()], site="site1",
                         min_version=version)


def test_ledger_state_reaches_the_agent(session: Session, harness: Harness) -> None:
    add_people(session)
    token = MediumToken("USB-0001", new_token())  # written onto the stick at registration
    row = service.register_medium(session, "admin1", medium_data(
        vendor_id="0781", product_id="5583", serial="AA0001", descriptors_sha256=None,
        interfaces=["08:06:50"], hosts=[HOST], token_digest=token_digest(
            token.token, "USB-0001", storage_stick("AA0001").binding())), now=NOW)
    session.commit()
    assert row.control_number == "USB-0001"
    current = node_policy(session, 1)
    harness.agent.policy_provider = lambda: current.usb
    harness.agent.start()
    name = harness.sim.plug(storage_stick("AA0001", token))
    harness.pump()
    assert harness.sim.is_authorized(name)
    assert harness.final(name).control_number == "USB-0001"

    clone = harness.sim.plug(storage_stick("AA0001", MediumToken("USB-0001", new_token())))
    harness.pump()
    assert not harness.sim.is_authorized(clone)  # same ids and serial, wrong token

    service.mark_lost(session, "admin1", "USB-0001", {"note": "not found at audit"},
                      now=NOW + timedelta(hours=1))
    session.commit()
    current = node_policy(session, 2)
    assert harness.agent.check_policy()
    assert not harness.sim.is_authorized(name)
    assert harness.final(name).rule == "state:lost"
