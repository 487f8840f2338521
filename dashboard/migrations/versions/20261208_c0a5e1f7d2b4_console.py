"""console: display names; review items carry when, whom, where and who works on them;
lockdown carries its reason

Revision ID: c0a5e1f7d2b4
Revises: 5a1e2c9d0b31
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dashboard.models.types import UTCDateTime

revision: str = "c0a5e1f7d2b4"
down_revision: str | None = "5a1e2c9d0b31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "display_names",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("ident", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
    )
    with op.batch_alter_table("anomalies") as batch:
        batch.add_column(sa.Column("at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("person_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("place", sa.String(128), nullable=True))
        batch.add_column(sa.Column("host", sa.String(128), nullable=True))
        batch.add_column(sa.Column("assignee", sa.String(64), nullable=True))
        batch.add_column(sa.Column("escalated_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("escalated_by", sa.String(64), nullable=True))
        batch.create_index("ix_anomalies_state_at", ["state", "at"])
        batch.create_index("ix_anomalies_at", ["at"])
        batch.create_index("ix_anomalies_person_at", ["person_id", "at"])
        batch.create_index("ix_anomalies_place_at", ["place", "at"])
    # existing items: a finding's time and person, else when the item was first seen
    op.execute(
        "UPDATE anomalies SET "
        "person_id = (SELECT f.person_id FROM correlation_findings f "
        "             WHERE f.anomaly_id = anomalies.id ORDER BY f.id LIMIT 1), "
        "at = COALESCE((SELECT f.at FROM correlation_findings f "
        "               WHERE f.anomaly_id = anomalies.id ORDER BY f.id LIMIT 1), "
        "              first_seen_at)"
    )
    with op.batch_alter_table("site_settings") as batch:
        batch.add_column(sa.Column("lockdown_reason", sa.String(2000), nullable=True))
        batch.add_column(sa.Column("lockdown_since", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("lockdown_by", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("site_settings") as batch:
        batch.drop_column("lockdown_by")
        batch.drop_column("lockdown_since")
        batch.drop_column("lockdown_reason")
    with op.batch_alter_table("anomalies") as batch:
        batch.drop_index("ix_anomalies_place_at")
        batch.drop_index("ix_anomalies_person_at")
        batch.drop_index("ix_anomalies_at")
        batch.drop_index("ix_anomalies_state_at")
        for column in ("escalated_by", "escalated_at", "assignee", "host", "place",
                       "person_id", "at"):
            batch.drop_column(column)
    op.drop_table("display_names")
