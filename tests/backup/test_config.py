from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest

from backup.config import BackupConfig, load_config
from backup.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "backup" / "README.md"


def test_readme_example_is_a_valid_config(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block
    path = tmp_path / "gateway.toml"
    path.write_text("[gateway]\nnode = 'x'\n" + block.group(1), encoding="utf-8")
    cfg = load_config(path)
    assert cfg.schedule == time(2, 0) and cfg.timezone == "Asia/Tokyo"
    assert cfg.retention.keep_monthly == 24 and cfg.events_include_paths is False


def test_unknown_keys_and_zones_are_refused(tmp_path: Path) -> None:
    base = ("repository='/r'\nvault_paths=['/v']\npublic_key_file='/p'\n"
            "dedup_key_file='/d'\ncache_dir='/c'\n")
    path = tmp_path / "b.toml"
    path.write_text(base + "passphrase='x'\n")
    with pytest.raises(ConfigError, match="passphrase"):
        load_config(path)
    path.write_text(base + "timezone='Mars/Olympus'\n")
    with pytest.raises(ConfigError, match="time zone"):
        load_config(path)
    path.write_text(base)
    assert isinstance(load_config(path), BackupConfig)
