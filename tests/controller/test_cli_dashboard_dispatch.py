"""`secroom db|user|dashboard ...` through the one `secroom` entry point (controller.cli.main):
their handlers are reached (the soak found `secroom dashboard run` failing with
AttributeError: 'Namespace' object has no attribute 'func')."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["db", "upgrade"],
        ["dashboard", "run", "--port", "0"],
        ["user", "add", "--username", "x", "--role", "admin"],
    ],
)
def test_dashboard_commands_reach_their_handler(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[dashboard]\nunknown_key = 1\n")
    assert main([*argv, "--config", str(config)]) == 2  # the handler's own config error
    assert "unknown_key" in capsys.readouterr().err
