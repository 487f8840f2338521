"""client documents: clients and their 事業所名, the office profile, issued files kept as
issued, incident classifications, the handling-status register, report numbers and
supersessions, certificate sources, periodic wipe intervals of media

Revision ID: c4e7a1d2b8f3
Revises: c0a5e1f7d2b4
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dashboard.models.types import UTCDateTime

revision: str = "c4e7a1d2b8f3"
down_revision: str | None = "c0a5e1f7d2b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("contact", sa.String(length=255), nullable=False),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("reporting_day", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "client_offices",
        sa.Column("office", sa.String(length=255), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("office"),
    )
    with op.batch_alter_table("client_offices") as batch:
        batch.create_index("ix_client_offices_client_id", ["client_id"], unique=False)
    op.create_table(
        "office_profile",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("representative", sa.String(length=255), nullable=False),
        sa.Column("date_style", sa.String(length=8), nullable=False),
        sa.Column("subcontracting", sa.Text(), nullable=False),
        sa.Column("measures", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "issued_files",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("report_id", BIGINT, nullable=True),
        sa.Column("certificate_id", sa.Integer(), nullable=True),
        sa.Column("fmt", sa.String(length=8), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("issued_files") as batch:
        batch.create_index("ix_issued_files_sha256", ["sha256"], unique=False)
        batch.create_index("ix_issued_files_report_id", ["report_id"], unique=False)
        batch.create_index("ix_issued_files_certificate_id", ["certificate_id"], unique=False)
    op.create_table(
        "incident_classifications",
        sa.Column("anomaly_id", BIGINT, autoincrement=False, nullable=False),
        sa.Column("incident", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("classified_by", sa.String(length=64), nullable=False),
        sa.Column("classified_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("anomaly_id"),
    )
    op.create_table(
        "personal_data_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("responsible_person_id", sa.String(length=128), nullable=True),
        sa.Column("department", sa.String(length=255), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("retention", sa.String(length=255), nullable=False),
        sa.Column("deletion_status", sa.String(length=255), nullable=False),
        sa.Column("access_groups", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "media_wipe_intervals",
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("interval_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("media_type"),
    )
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("wipe_interval_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("issued_reports") as batch:
        batch.add_column(sa.Column("number", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("client_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("supersedes", BIGINT, nullable=True))
        batch.add_column(sa.Column("supersede_reason", sa.Text(), nullable=True))
        batch.create_unique_constraint("uq_issued_reports_number", ["number"])
        batch.create_index("ix_issued_reports_client_id", ["client_id"], unique=False)
        batch.create_index("ix_issued_reports_supersedes", ["supersedes"], unique=False)
    with op.batch_alter_table("deletion_certificates") as batch:
        batch.add_column(sa.Column("client_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("source_kind", sa.String(length=16), nullable=False,
                                   server_default="manual"))
        batch.add_column(sa.Column("source_ref", sa.String(length=255), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("lang", sa.String(length=2), nullable=False,
                                   server_default="ja"))
        batch.create_index("ix_deletion_certificates_client_id", ["client_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deletion_certificates") as batch:
        batch.drop_index("ix_deletion_certificates_client_id")
        batch.drop_column("lang")
        batch.drop_column("source_ref")
        batch.drop_column("source_kind")
        batch.drop_column("client_id")
    with op.batch_alter_table("issued_reports") as batch:
        batch.drop_index("ix_issued_reports_supersedes")
        batch.drop_index("ix_issued_reports_client_id")
        batch.drop_constraint("uq_issued_reports_number", type_="unique")
        batch.drop_column("supersede_reason")
        batch.drop_column("supersedes")
        batch.drop_column("client_id")
        batch.drop_column("number")
    with op.batch_alter_table("media") as batch:
        batch.drop_column("wipe_interval_days")
    op.drop_table("media_wipe_intervals")
    op.drop_table("personal_data_files")
    op.drop_table("incident_classifications")
    op.drop_table("issued_files")
    op.drop_table("office_profile")
    op.drop_table("client_offices")
    op.drop_table("clients")
