"""Host leases: a round shared by several ``fedimeter worker`` processes, split by host.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "host_leases",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("measure_instance", sa.Boolean(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token", sa.Integer(), nullable=False),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_host_leases_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_host_leases_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "instance_id", name=op.f("pk_host_leases")),
    )
    with op.batch_alter_table("host_leases", schema=None) as batch_op:
        batch_op.create_index("ix_host_leases_open", ["run_id", "done_at"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("host_leases", schema=None) as batch_op:
        batch_op.drop_index("ix_host_leases_open")
    op.drop_table("host_leases")
