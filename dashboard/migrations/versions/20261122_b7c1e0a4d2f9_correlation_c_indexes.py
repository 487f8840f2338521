"""correlation: binary-collation person indexes

The correlation re-run streams number_access and presence ordered by ``person_id COLLATE "C"``
(binary, Python's str order, which its merge compares). On PostgreSQL these indexes let it read
them in that order instead of sorting the whole period. SQLite's default collation is binary
already and its (person_id, ...) indexes serve: there the indexes are empty (``WHERE 0``), so
they cost nothing.

Revision ID: b7c1e0a4d2f9
Revises: 69dd3ae69f3e
Create Date: 2026-11-22 10:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7c1e0a4d2f9"
down_revision: str | None = "69dd3ae69f3e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BINARY = {"person_id": 'COLLATE "C"'}


def upgrade() -> None:
    op.create_index(
        "ix_number_access_person_c_ts",
        "number_access",
        ["person_id", "ts"],
        postgresql_ops=BINARY,
        sqlite_where=sa.text("0"),
    )
    op.create_index(
        "ix_presence_person_c_entered",
        "presence",
        ["person_id", "entered_at"],
        postgresql_ops=BINARY,
        sqlite_where=sa.text("0"),
    )


def downgrade() -> None:
    op.drop_index("ix_presence_person_c_entered", table_name="presence")
    op.drop_index("ix_number_access_person_c_ts", table_name="number_access")
