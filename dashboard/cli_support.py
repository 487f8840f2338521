"""What the dashboard's command-line modules share: settings and a session maker from
``--config`` / ``--database-url``, and the exit codes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dashboard.settings import DashboardSettings, load_settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def settings_of(args: argparse.Namespace) -> DashboardSettings:
    if getattr(args, "config", None):
        return load_settings(Path(args.config))
    return DashboardSettings()


def sessionmaker_of(args: argparse.Namespace) -> tuple[DashboardSettings, Any]:
    from dashboard.db import make_engine, make_sessionmaker

    settings = settings_of(args)
    url = getattr(args, "database_url", None) or settings.database_url
    return settings, make_sessionmaker(make_engine(url))


def add_db_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="dashboard TOML config ([dashboard] table)")
    p.add_argument("--database-url", help="override the configured database URL")


def fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return EXIT_USAGE
