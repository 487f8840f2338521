"""The backups tests share the printing tests' fixtures (app with both routers, ingest feed)."""

from tests.dashboard.printing.conftest import feed, pages, webapp_db  # noqa: F401 - fixtures
