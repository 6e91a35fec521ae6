"""Instances tracked for themselves: their samples and weekly activity.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tracked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "instance_samples",
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("software", sa.String(length=100), nullable=True),
        sa.Column("version", sa.String(length=100), nullable=True),
        sa.Column("users", sa.BigInteger(), nullable=True),
        sa.Column("statuses", sa.BigInteger(), nullable=True),
        sa.Column("domains", sa.BigInteger(), nullable=True),
        sa.Column("peers", sa.BigInteger(), nullable=True),
        sa.Column("active_month", sa.BigInteger(), nullable=True),
        sa.Column("active_halfyear", sa.BigInteger(), nullable=True),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_instance_samples_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_instance_samples_run_id_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("instance_id", "taken_at", name=op.f("pk_instance_samples")),
    )
    with op.batch_alter_table("instance_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instance_samples_run_id"), ["run_id"], unique=False)
    op.create_table(
        "instance_activity",
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("statuses", sa.BigInteger(), nullable=False),
        sa.Column("logins", sa.BigInteger(), nullable=False),
        sa.Column("registrations", sa.BigInteger(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_instance_activity_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", "week_start", name=op.f("pk_instance_activity")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("instance_activity")
    with op.batch_alter_table("instance_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instance_samples_run_id"))
    op.drop_table("instance_samples")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("tracked_at")
