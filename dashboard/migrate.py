"""Database migrations (Alembic), called by `secroom db upgrade` and by tests.

``upgrade(url)`` brings any database (empty or older) to the current schema; ``diff(url)``
lists what differs between the database and the models (empty when they match).

Alembic logs at INFO the plugins it loads (on its first import), the dialect it picked and each
revision it runs: a developer's detail, printed before ``make demo``'s banner. So alembic is
imported and run only inside ``_quiet_alembic()``, which holds its loggers at WARNING (warnings
and errors still show; with ``-v``, DEBUG, everything does).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dashboard.models  # noqa: F401 - registers every table on Base.metadata
from dashboard.db import Base, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).resolve().parent


class MigrationError(Exception):
    """The database could not be migrated (the message names the cause)."""


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    log = logging.getLogger("alembic")
    before = log.level
    if not log.isEnabledFor(logging.DEBUG):
        log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(before)


def alembic_config(database_url: str) -> Config:
    with _quiet_alembic():
        from alembic.config import Config

    cfg = Config(str(HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head", *, site: str | None = None) -> None:
    """Apply every migration up to ``revision`` (default: the newest). A database made by a
    newer release (a revision this code does not know) is refused before anything runs.
    ``site``: the configured site, which rows that had none take (migration b4e6a8c0d2f5)."""
    check_known(database_url)
    try:
        with _quiet_alembic():
            from alembic import command

            cfg = alembic_config(database_url)
            if site:
                cfg.attributes["site"] = site
            command.upgrade(cfg, revision)
    except Exception as exc:
        raise MigrationError(f"database upgrade to {revision} failed: {exc}") from exc


def known_revisions() -> set[str]:
    """Every revision this code's migrations know."""
    with _quiet_alembic():
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(alembic_config("sqlite://"))
        return {rev.revision for rev in script.walk_revisions()}


def check_known(database_url: str) -> str | None:
    """The database's revision; MigrationError if this code does not know it (a downgrade:
    the database was made or upgraded by a newer secroom)."""
    try:
        rev = current(database_url)
    except Exception as exc:
        raise MigrationError(f"cannot read the database's schema revision: {exc}") from exc
    if rev is not None and rev not in known_revisions():
        raise MigrationError(
            f"the database is at schema revision {rev}, which this secroom ({_software()}) "
            "does not know: a newer release made it. Downgrades are not supported; install "
            "that release (or a newer one) again. Nothing was changed.")
    return rev


def check_current(database_url: str) -> None:
    """For starting the dashboard: the database must be at this code's head, neither newer
    (refused: see ``check_known``) nor older (run ``secroom db upgrade`` first)."""
    rev = check_known(database_url)
    want = head()
    if rev != want:
        raise MigrationError(
            "the database has no schema yet" if rev is None else
            f"the database is at schema revision {rev}, older than this secroom's {want}")


def _software() -> str:
    from controller.compat import software_version

    return software_version()


def head() -> str | None:
    with _quiet_alembic():
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current(database_url: str) -> str | None:
    engine = make_engine(database_url)
    try:
        with _quiet_alembic(), engine.connect() as conn:
            from alembic.migration import MigrationContext

            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def diff(database_url: str) -> list[Any]:
    """Differences between the database schema and the models (autogenerate's view)."""
    engine = make_engine(database_url)
    try:
        with _quiet_alembic(), engine.connect() as conn:
            from alembic.autogenerate import compare_metadata
            from alembic.migration import MigrationContext

            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def revision(database_url: str, message: str) -> None:
    """Developer helper: autogenerate a new revision against an up-to-date database (it says
    at INFO what it detected)."""
    from alembic import command

    command.revision(alembic_config(database_url), message=message, autogenerate=True)
