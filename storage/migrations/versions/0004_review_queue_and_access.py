"""review workspace: accounts, API tokens, queue, decisions, notes, confirmations (issue #5)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 08:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"], unique=False)
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=False),
        sa.Column("at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failures_username_at", "login_failures", ["username", "at"], unique=False)
    op.create_index("ix_login_failures_client_at", "login_failures", ["client", "at"], unique=False)
    op.create_index("ix_leads_priority_sla", "leads", ["priority", "sla_due_at"], unique=False)
    op.create_index("ix_leads_score", "leads", ["score"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_leads_score", table_name="leads")
    op.drop_index("ix_leads_priority_sla", table_name="leads")
    op.drop_index("ix_login_failures_client_at", table_name="login_failures")
    op.drop_index("ix_login_failures_username_at", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
