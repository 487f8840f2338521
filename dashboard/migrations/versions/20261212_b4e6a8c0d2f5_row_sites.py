"""people, groups, doors, printers: the site each belongs to (many sites, issue 24)

Cards, weekly windows and rights follow their person or group; hosts and nodes' events follow
their node (nodes.site). Existing rows take the installation's one configured site: the
``site`` that ``secroom db upgrade`` passes from the configuration file, else the only site
with settings (or of the nodes), else the default site of a fresh single box.

Revision ID: b4e6a8c0d2f5
Revises: a9c3e5b7d1f2
Create Date: 2026-12-12 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "b4e6a8c0d2f5"
down_revision: str | None = "a9c3e5b7d1f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("people", "groups", "doors", "printers")


def _site(bind: sa.engine.Connection) -> str:
    given = context.config.attributes.get("site")
    if given:
        return str(given)
    from dashboard.models.people import DEFAULT_SITE, single_site

    try:
        return single_site(bind)
    except ValueError:  # several sites and none named: the first settings row's
        first = bind.execute(sa.text("SELECT MIN(site) FROM site_settings")).scalar()
        return str(first or DEFAULT_SITE)


def upgrade() -> None:
    bind = op.get_bind()
    site = _site(bind)
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("site", sa.String(length=64), nullable=True))
        op.execute(sa.text(f"UPDATE {table} SET site = :site").bindparams(site=site))  # noqa: S608
        with op.batch_alter_table(table) as batch:
            batch.alter_column("site", existing_type=sa.String(length=64), nullable=False)
            batch.create_index(f"ix_{table}_site", ["site"], unique=False)


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_site")
            batch.drop_column("site")
