"""The web layer's fixtures (an app on a temp SQLite DB, users of every role)."""

from tests.dashboard.web.conftest import webapp  # noqa: F401
