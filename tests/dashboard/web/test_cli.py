"""`secroom db upgrade` and `secroom user add` create a database the app can log in to."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from dashboard import cli
from dashboard.app import create_app
from dashboard.db import make_engine, make_sessionmaker
from dashboard.models.auth import User
from dashboard.settings import load_settings
from tests.dashboard.web.conftest import TestClient, login


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="secroom")
    cli.add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_upgrade_then_first_admin_then_login(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "dashboard.toml"
    config.write_text(f'[dashboard]\nsite = "lab"\ndata_dir = "{tmp_path / "data"}"\n')
    args = parse(["db", "upgrade", "--config", str(config)])
    assert args.func(args) == 0
    settings = load_settings(config)
    engine = make_engine(settings.database_url)
    tables = set(inspect(engine).get_table_names())
    assert {"auth_users", "auth_sessions", "auth_api_tokens", "auth_login_attempts"} <= tables

    pw = tmp_path / "pw"
    pw.write_text("first admin password\n")
    args = parse(["user", "add", "--config", str(config), "--username", "root",
                  "--role", "admin", "--password-file", str(pw)])
    assert args.func(args) == 0
    assert args.func(args) == 2  # the same user twice is refused
    assert "already exists" in capsys.readouterr().err
    weak = tmp_path / "weak"
    weak.write_text("short\n")
    args = parse(["user", "add", "--config", str(config), "--username", "x",
                  "--role", "auditor", "--password-file", str(weak)])
    assert args.func(args) == 2

    sm = make_sessionmaker(engine)
    with sm() as db:
        user = db.scalar(select(User).where(User.username == "root"))
        assert user is not None and user.role == "admin"
    client = TestClient(create_app(settings, sessionmaker=sm))
    login(client, "root", "first admin password")
    assert client.get("/api/v1/me").json()["role"] == "admin"
    audit = client.get("/api/v1/audit").json()["items"]
    assert audit[0]["action"] == "user.create" and audit[0]["actor"] == "cli"


def test_run_parses_and_bad_config_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[dashboard]\nunknown_key = 1\n")
    args = parse(["dashboard", "run", "--config", str(config), "--port", "0"])
    assert args.func is cli.dashboard_run
    assert args.func(args) == 2
    assert "unknown_key" in capsys.readouterr().err
