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


def test_a_node_command_never_loads_the_dashboard() -> None:
    """A gateway-only Pi starts `secroom gateway run` without the dashboard's code path."""
    import subprocess
    import sys

    code = ("import sys; from controller.cli import main; "
            "main(['check-config', '--config', sys.argv[1]]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dashboard'))")
    out = subprocess.run([sys.executable, "-c", code, "/dev/null/none"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.stdout.strip().endswith("[]"), out.stdout + out.stderr


def test_without_the_dashboard_its_commands_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.metadata

    from controller import cli

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    assert main(["dashboard", "run", "--port", "0"]) == cli.EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert "pip install -e ." in err and "not installed" in err
