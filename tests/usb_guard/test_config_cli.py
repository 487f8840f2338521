from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from usb_guard.cli import add_subcommands
from usb_guard.config import ConfigError, UsbAgentConfig, load_config
from usb_guard.policy import UsbPolicy

from .conftest import make_medium


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="secroom")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


def no_emit(kind: str, data: Any) -> None:
    raise AssertionError("export-rules emits nothing")


def test_load_toml_and_json_config_with_overrides(tmp_path: Path) -> None:
    toml = tmp_path / "usb.toml"
    toml.write_text('host = "pc1"\nsysfs_root = "/srv/fake-sys"\nforce_read_only = true\n')
    config = load_config(toml, host="pc9", sysfs_root=None)
    assert (config.host, config.sysfs_root, config.force_read_only) == (
        "pc9", Path("/srv/fake-sys"), True)
    js = tmp_path / "usb.json"
    js.write_text(json.dumps({"host": "pc2", "new_devices": "internal_only"}))
    assert load_config(js).new_devices == "internal_only"


@pytest.mark.parametrize(("text", "message"), [
    ('host = "pc1"\nsysfs_rot = "/x"\n', "sysfs_rot"),
    ('host = "pc1"\nnew_devices = "maybe"\n', "new_devices"),
    ("host = ", "not valid"),
])
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "usb.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_export_rules_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    medium, _ = make_medium()
    out = tmp_path / "rules.conf"
    args = parse("usb", "export-rules", "--host", "room-pc1", "--output", str(out))
    assert args.handler(args, no_emit, lambda: UsbPolicy(media=(medium,))) == 0
    assert 'label "USB-0001"' in out.read_text()

    args = parse("usb", "export-rules")
    assert args.handler(args, no_emit, lambda: UsbPolicy(media=(medium,))) == 0
    assert capsys.readouterr().out.endswith("block\n")

    assert args.handler(args, no_emit, lambda: None) == 2
    assert "no signed policy" in capsys.readouterr().err


def test_agent_check_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "usb.toml"
    path.write_text('host = "pc1"\n')
    args = parse("usb", "agent", "--config", str(path), "--check-config")
    assert args.handler(args, no_emit, lambda: None) == 0
    assert "host pc1" in capsys.readouterr().out
    path.write_text('host = "pc1"\nbogus = 1\n')
    assert args.handler(args, no_emit, lambda: None) == 2
    assert "bogus" in capsys.readouterr().err
    args = parse("usb", "agent", "--host", "pc7", "--check-config")
    assert args.handler(args, no_emit, lambda: None) == 0


def test_config_model_forbids_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        UsbAgentConfig(host="pc1", surprise=True)  # type: ignore[call-arg]
