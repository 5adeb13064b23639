"""comment_threads: the threads comment discovery followed, each with its own mark

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 01:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "comment_threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.String(length=64), nullable=False),
        sa.Column("thread_key", sa.String(length=200), nullable=False),
        sa.Column("source_platform_id", sa.String(length=64), nullable=True),
        sa.Column("source_external_id", sa.String(length=200), nullable=True),
        sa.Column("first_followed_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_read_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("replies_at_read", sa.Integer(), nullable=False),
        sa.Column("newest_mark", sa.String(length=250), nullable=True),
        sa.ForeignKeyConstraint(
            ["platform_id"], ["platforms.id"], name=op.f("fk_comment_threads_platform_id_platforms")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comment_threads")),
        sa.UniqueConstraint(
            "platform_id", "thread_key", name=op.f("uq_comment_threads_platform_id_thread_key")
        ),
    )


def downgrade() -> None:
    op.drop_table("comment_threads")
