"""A medium token works only on the stick it was written on.

Copying the token block (or the whole image, as ``dd`` would) onto another stick of the same
model does not make that stick pass: the token's digest in the ledger covers the USB ids, the
serial and the capacity the kernel reports. (A stick with another serial is refused before any
token is read: the ledger's identity does not match.)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from usb_guard.agent import Agent
from usb_guard.config import UsbAgentConfig
from usb_guard.medium_token import (
    BLOCK_SIZE,
    DEFAULT_TOKEN_OFFSET,
    MediumToken,
    legacy_token_digest,
    new_token,
)
from usb_guard.policy import UsbPolicy
from usb_guard.simulated import DEFAULT_SECTORS, SimulatedUsb, storage_stick

from .conftest import HOST, Harness, make_medium
from .test_medium_token import v1_block


@pytest.mark.parametrize("what", ["token_block", "whole_image"])
@pytest.mark.parametrize("serial", [None, "AA0001"], ids=["no_serial", "same_serial"])
def test_a_token_copied_onto_another_stick_is_refused(harness: Harness, serial: str | None,
                                                      what: str) -> None:
    medium, token = make_medium(serial=serial)
    harness.policy = UsbPolicy(media=(medium,))
    harness.agent.start()
    original = harness.sim.plug(storage_stick(serial, token))
    harness.pump()
    assert harness.final(original).verdict == "allow"
    disk = harness.sim.disk_of(original)
    assert disk is not None
    image = (harness.sim.dev_root / disk).read_bytes()
    harness.sim.unplug(original)
    harness.pump()

    # the same model, a bigger stick (with the same serial, or none), holding the copy
    other = storage_stick(serial, None, sectors=2 * DEFAULT_SECTORS)
    if what == "token_block":
        block = image[DEFAULT_TOKEN_OFFSET:DEFAULT_TOKEN_OFFSET + BLOCK_SIZE]
        other = replace(other, token_block=block)
    else:
        other = replace(other, image=image)
    copy = harness.sim.plug(other)
    harness.pump()
    assert not harness.sim.is_authorized(copy)
    assert harness.sim.disk_of(copy) is None
    event = harness.final(copy)
    assert (event.phase, event.verdict) == ("token_check", "removed_token_mismatch")
    assert event.control_number == "USB-0001"  # the medium it pretended to be
    assert event.reason == ("token was written for another device (USB ids, serial or "
                            "capacity differ): a copied token")
    assert harness.agent.stats.token_mismatches == 1


@pytest.mark.parametrize("accept", [False, True])
def test_v1_tokens_work_only_while_the_migration_setting_accepts_them(
    sim: SimulatedUsb, accept: bool,
) -> None:
    old = MediumToken("USB-0001", new_token())
    medium, _ = make_medium()
    medium = medium.model_copy(update={"token_digest": legacy_token_digest(old.token,
                                                                           "USB-0001")})
    events: list[Any] = []
    config = UsbAgentConfig(host=HOST, sysfs_root=sim.sysfs_root, dev_root=sim.dev_root,
                            accept_unbound_tokens=accept)
    agent = Agent(config, emit=lambda k, d: events.append(d), source=sim,
                  policy_provider=lambda: UsbPolicy(media=(medium,)))
    agent.start()
    name = sim.plug(replace(storage_stick("AA0001"), token_block=v1_block(old)))
    while batch := sim.drain():
        for event in batch:
            agent.handle(event)
    assert sim.is_authorized(name) == accept
    final = events[-1]
    if accept:
        assert (final.verdict, final.control_number) == ("allow", "USB-0001")
        assert final.reason.endswith("(v1 token, not bound to the stick: re-initialise the "
                                     "medium)")
        assert sim.exposed(f"{sim.disk_of(name)}1")
    else:
        assert final.verdict == "removed_token_mismatch"
        assert final.reason == ("token written before device binding (v1): re-initialise "
                                "the medium")
