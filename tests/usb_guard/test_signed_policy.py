"""A ledger change reaches the agent as a signed policy (until the controller embeds UsbPolicy
in its node policy, signed here the same way: Ed25519 over canonical JSON)."""

from __future__ import annotations

import json
from datetime import timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.envelope import b64u, canonical_json, unb64u
from usb_guard import ledger
from usb_guard.medium_token import MediumToken, new_token, token_digest
from usb_guard.policy import MediumIdentity, UsbPolicy
from usb_guard.simulated import storage_stick

from .conftest import HOST, NOW, Harness

KEY = Ed25519PrivateKey.generate()


def sign(policy: UsbPolicy) -> bytes:
    body = policy.model_dump(mode="json")
    return canonical_json({"usb": body, "sig": b64u(KEY.sign(canonical_json(body)))})


class LastGoodPolicy:
    """What the node runtime does: verify, keep the last good policy, refuse anything else."""

    def __init__(self) -> None:
        self.current: UsbPolicy | None = None
        self.rejected = 0

    def receive(self, blob: bytes) -> None:
        raw = json.loads(blob)
        try:
            KEY.public_key().verify(unb64u(raw["sig"]), canonical_json(raw["usb"]))
        except InvalidSignature:
            self.rejected += 1
            return
        self.current = UsbPolicy.model_validate(raw["usb"])


def test_ledger_change_reaches_the_agent_through_a_signed_policy(harness: Harness) -> None:
    token = MediumToken("USB-0001", new_token())
    identity = MediumIdentity(vendor_id="0781", product_id="5583", serial="AA0001",
                              interfaces=("08:06:50",))
    medium = ledger.register("USB-0001", identity, token_digest(token.token, "USB-0001",
                                                       storage_stick("AA0001").binding()),
                             make="SanDisk", model="Cruzer", custodian="Sato", actor="admin",
                             now=NOW, hosts=[HOST]).medium
    medium = ledger.store(medium, actor="admin", now=NOW).medium
    node = LastGoodPolicy()
    node.receive(sign(ledger.to_policy([medium])))
    harness.policy = None
    harness.agent.policy_provider = lambda: node.current
    harness.agent.start()
    name = harness.sim.plug(storage_stick("AA0001", token))
    harness.pump()
    assert harness.sim.is_authorized(name)

    lost = ledger.mark_lost(medium, actor="admin", now=NOW + timedelta(hours=1)).medium
    forged = json.loads(sign(ledger.to_policy([medium])))
    forged["usb"]["default"] = "allow"  # tampered in transit: refused, last good kept
    node.receive(json.dumps(forged).encode())
    assert node.rejected == 1 and not harness.agent.check_policy()

    node.receive(sign(ledger.to_policy([lost])))
    assert harness.agent.check_policy()
    assert not harness.sim.is_authorized(name)
    assert harness.final(name).rule == "state:lost"
