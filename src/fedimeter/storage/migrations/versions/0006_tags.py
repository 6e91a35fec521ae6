"""Hashtags: tags tracked per instance, their daily history, and instances' trending tags.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("trends_tracked_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_code", sa.String(length=40), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_tags_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("instance_id", "name_key", name="uq_tags_instance_name"),
    )
    op.create_table(
        "tag_history",
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("uses", sa.BigInteger(), nullable=False),
        sa.Column("accounts", sa.BigInteger(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_tag_history_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_tag_history_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("tag_id", "day", name=op.f("pk_tag_history")),
    )
    with op.batch_alter_table("tag_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tag_history_run_id"), ["run_id"], unique=False)
    op.create_table(
        "trend_tags",
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("uses", sa.BigInteger(), nullable=False),
        sa.Column("accounts", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_trend_tags_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_trend_tags_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("instance_id", "taken_at", "rank", name=op.f("pk_trend_tags")),
    )
    with op.batch_alter_table("trend_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trend_tags_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("trend_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trend_tags_run_id"))
    op.drop_table("trend_tags")
    with op.batch_alter_table("tag_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tag_history_run_id"))
    op.drop_table("tag_history")
    op.drop_table("tags")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("trends_tracked_at")
