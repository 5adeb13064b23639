"""crawl_gaps: requests lost after their retries, fetched again by later runs until recovered or aged out

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crawl_gaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("listing", "detail", "thread", name="gapkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum("open", "recovered", "aged_out", name="gapstate", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("first_failed_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_tried_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_reason", sa.String(length=200), nullable=True),
        sa.Column("closed_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["platform_id"], ["platforms.id"], name=op.f("fk_crawl_gaps_platform_id_platforms")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawl_gaps")),
        sa.UniqueConstraint("platform_id", "fingerprint", name=op.f("uq_crawl_gaps_platform_id_fingerprint")),
    )
    op.create_index("ix_crawl_gaps_state_platform_id", "crawl_gaps", ["state", "platform_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_crawl_gaps_state_platform_id", table_name="crawl_gaps")
    op.drop_table("crawl_gaps")
