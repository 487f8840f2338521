from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from usb_guard.errors import SysfsError, TokenError
from usb_guard.ledger import register, store, to_policy
from usb_guard.registration import initialise_medium
from usb_guard.simulated import DeviceSpec, SimulatedUsb, storage_stick

from .conftest import HOST, NOW, Harness
from .test_config_cli import no_emit, parse


def test_initialised_medium_is_then_allowed_by_the_agent(harness: Harness) -> None:
    sim = harness.sim  # registration workstation: no agent running, the stick is authorised
    name = sim.plug(storage_stick("NEW0001"))
    disk = sim.disk_of(name)
    assert disk is not None
    done = initialise_medium(sim.sysfs_root, sim.dev_root, disk, "USB-0009")
    assert done.usb_device == name and done.identity.serial == "NEW0001"
    assert done.identity.interfaces == ("08:06:50",) and done.identity.descriptors_sha256

    medium = register("USB-0009", done.identity, done.token_digest, make="SanDisk",
                      model="Cruzer", custodian="Sato", actor="admin", now=NOW,
                      hosts=[HOST]).medium
    harness.policy = to_policy([store(medium, actor="admin", now=NOW).medium])
    harness.agent.start()  # the room host's agent sees the same stick
    harness.pump()
    assert sim.is_authorized(name)
    assert harness.final(name).control_number == "USB-0009"
    assert harness.final(name).phase == "token_check"


def test_medium_without_room_for_the_token_is_refused(sim: SimulatedUsb) -> None:
    spec = DeviceSpec(0x0781, 0x5583, ((8, 6, 0x50),), "OLD", first_partition_sector=63)
    disk = sim.disk_of(sim.plug(spec))
    assert disk is not None
    with pytest.raises(TokenError, match="repartition"):
        initialise_medium(sim.sysfs_root, sim.dev_root, disk, "USB-0010")
    with pytest.raises(SysfsError, match="no block device"):
        initialise_medium(sim.sysfs_root, sim.dev_root, "sdzz", "USB-0010")


def test_init_medium_command_prints_the_ledger_identity(
    sim: SimulatedUsb, capsys: pytest.CaptureFixture[str]
) -> None:
    disk = sim.disk_of(sim.plug(storage_stick("CLI1")))
    assert disk is not None
    args = parse("usb", "init-medium", "--disk", disk, "--control-number", "USB-0011",
                 "--sysfs-root", str(sim.sysfs_root), "--dev-root", str(sim.dev_root))
    assert args.handler(args, no_emit, lambda: None) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert out["control_number"] == "USB-0011" and out["identity"]["serial"] == "CLI1"
    assert len(out["token_digest"]) == 64 and out["capacity_sectors"] == 4096
    assert "no serial" not in capsys.readouterr().err
    bare = sim.disk_of(sim.plug(storage_stick(None)))
    assert bare is not None
    args = parse("usb", "init-medium", "--disk", bare, "--control-number", "USB-0013",
                 "--sysfs-root", str(sim.sysfs_root), "--dev-root", str(sim.dev_root))
    assert args.handler(args, no_emit, lambda: None) == 0
    assert "no serial number" in capsys.readouterr().err  # bound to model and capacity only
    args = parse("usb", "init-medium", "--disk", "nope", "--control-number", "USB-0012",
                 "--sysfs-root", str(sim.sysfs_root), "--dev-root", str(sim.dev_root))
    assert args.handler(args, no_emit, lambda: None) == 1
    assert "no block device nope" in capsys.readouterr().err


def test_example_agent_config_is_valid() -> None:
    from usb_guard.config import load_config

    example = Path(__file__).resolve().parents[2] / "hardware/udev/usb-agent.example.toml"
    assert load_config(example).host == "room-pc1"
