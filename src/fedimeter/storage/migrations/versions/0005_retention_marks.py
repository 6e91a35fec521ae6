"""Retention marks: how far each sample table has been thinned to one a day or a week.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "retention_marks",
        sa.Column("sample_table", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("thinned_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sample_table", "period", name=op.f("pk_retention_marks")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("retention_marks")
