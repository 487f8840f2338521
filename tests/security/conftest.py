"""The security pass reuses the project's fixtures: the backup engine's vault and operator key,
the dashboard core's databases (SQLite and PostgreSQL) and the web
app factory. Each test here attacks one protection named in SECURITY.md."""

from __future__ import annotations

from tests.backup.conftest import env, operator_key  # noqa: F401
from tests.dashboard.conftest import engine, node, pg_engine, session, sm  # noqa: F401
from tests.dashboard.web.conftest import webapp_db  # noqa: F401, E402
