"""The host agent's config: the shipped example validates, bad settings are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[3] / "hardware" / "host-agent" / \
    "host-agent.example.toml"


def test_the_shipped_example_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.host is not None and config.host.host == "pc-01"
    assert [w.key for w in config.host.watches] == ["secroom-number_data", "secroom-vault"]
    assert config.usb is not None and config.host.presence_unknown == "deny"


@pytest.mark.parametrize(("host", "message"), [
    ({"host": "pc-01", "presence_unknown": "maybe"}, "presence_unknown"),
    ({"host": "pc-01", "watches": [{"path": "relative/dir", "path_class": "x"}]}, "absolute"),
    ({"host": "pc-01", "watches": [{"path": "/srv/a", "path_class": "Number Data"}]}, "class"),
    ({"host": "pc-01", "watches": [{"path": "/srv/a", "path_class": "a"},
                                   {"path": "/srv/a", "path_class": "b"}]}, "watched twice"),
    ({"host": "pc-01", "card_wait_s": 120}, "card_wait_s"),
    ({"host": "pc 01"}, "host"),
    ({"host": "pc-01", "surprise": 1}, "Extra inputs"),
])
def test_bad_settings_are_clear_errors(host, message) -> None:
    data = {"node": {"name": "pc-01", "site": "hq"}, "policy": {"trusted_keys": ["k.pub"]},
            "host": host}
    with pytest.raises(ConfigError, match=message):
        parse_config(data, base=Path("/etc/secroom"))
