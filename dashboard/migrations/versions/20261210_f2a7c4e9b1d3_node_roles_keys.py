"""nodes: roles (what each may emit), key history (rotation and revocation)

Nodes approved before this migration get the roles their stored events show: a door.* event
makes a door gateway, print.* a print station, usb.* or host.* a host agent, backup.* a backup
job (the kind families as they stand at this revision, frozen here). reader.* (a door gateway or
a print station), node.* and policy.* (every role) say nothing alone. A node whose events show
no role stays without one: the ingest refuses its events (kind_not_allowed, raised) until an
admin sets its role on the nodes page; they wait in its journal meanwhile, nothing is lost and
nothing is trusted on a guess.

Revision ID: f2a7c4e9b1d3
Revises: d8b3f0a6c2e1
Create Date: 2026-12-10 09:00:00
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dashboard.models.types import UTCDateTime

revision: str = "f2a7c4e9b1d3"
down_revision: str | None = "d8b3f0a6c2e1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FAMILY_ROLE = {"door": "door_gateway", "print": "print_station", "usb": "host_agent",
               "host": "host_agent", "backup": "backup_job"}


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("roles", sa.String(length=128), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("key_since_seq", sa.BigInteger(), nullable=False,
                                   server_default="1"))
        batch.add_column(sa.Column("announced_key", sa.String(length=64), nullable=True))
    op.create_table(
        "node_keys",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("from_seq", sa.BigInteger(), nullable=False),
        sa.Column("until_seq", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("replaced_at", UTCDateTime(), nullable=False),
        sa.Column("replaced_by", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_node_keys_node", "node_keys", ["node"])
    _infer_roles()


def _infer_roles() -> None:
    bind = op.get_bind()
    nodes = sa.table("nodes", sa.column("name", sa.String), sa.column("key_status", sa.String),
                     sa.column("roles", sa.String))
    events = sa.table("events", sa.column("node", sa.String), sa.column("kind", sa.String))
    approved = {r[0] for r in bind.execute(
        sa.select(nodes.c.name).where(nodes.c.key_status == "approved"))}
    found: dict[str, set[str]] = defaultdict(set)
    for node, kind in bind.execute(
            sa.select(events.c.node, events.c.kind).group_by(events.c.node, events.c.kind)):
        role = FAMILY_ROLE.get(str(kind).split(".", 1)[0])
        if node in approved and role is not None:
            found[node].add(role)
    for node, roles in found.items():
        bind.execute(nodes.update().where(nodes.c.name == node)
                     .values(roles=",".join(sorted(roles))))


def downgrade() -> None:
    op.drop_index("ix_node_keys_node", table_name="node_keys")
    op.drop_table("node_keys")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("announced_key")
        batch.drop_column("key_since_seq")
        batch.drop_column("roles")
