"""When an instance's trending hashtags were last read, an empty list included.

An empty answer stores no list (trends turned off, or nothing trending), so without this
column a server that stopped trending showed its last list as the newest, however old.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 14:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("trends_checked_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("trends_checked_at")
