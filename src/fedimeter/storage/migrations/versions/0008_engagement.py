"""Engagement: accounts whose timeline is read, and the statuses seen there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "engagement_accounts",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("covered_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_requests", sa.Integer(), nullable=False),
        sa.Column("last_paging_requests", sa.Integer(), nullable=False),
        sa.Column("last_statuses", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_code", sa.String(length=40), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_engagement_accounts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_engagement_accounts")),
    )
    op.create_table(
        "engagement_statuses",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("status_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("favourites", sa.BigInteger(), nullable=False),
        sa.Column("reblogs", sa.BigInteger(), nullable=False),
        sa.Column("replies", sa.BigInteger(), nullable=False),
        sa.Column("in_reply_to_id", sa.String(length=200), nullable=True),
        sa.Column("visibility", sa.String(length=20), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gone_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_engagement_statuses_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "status_id", name=op.f("pk_engagement_statuses")),
    )
    with op.batch_alter_table("engagement_statuses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_engagement_statuses_posted", ["account_id", "created_at"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("engagement_statuses", schema=None) as batch_op:
        batch_op.drop_index("ix_engagement_statuses_posted")
    op.drop_table("engagement_statuses")
    op.drop_table("engagement_accounts")
