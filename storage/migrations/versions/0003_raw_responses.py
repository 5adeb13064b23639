"""raw_responses: compressed response bodies kept as evidence; posts.raw_response_id; crawl health columns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 08:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "raw_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=True),
        sa.Column("fetched_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("body_gz", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    op.create_index("ix_raw_responses_platform_id", "raw_responses", ["platform_id"], unique=False)
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_response_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_posts_raw_response_id", "raw_responses", ["raw_response_id"], ["id"])
    with op.batch_alter_table("crawl_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("responses_by_status", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("dropped", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("duration_seconds", sa.Float(), nullable=True))
        layout_changed: sa.Column[bool] = sa.Column(
            "layout_changed", sa.Boolean(), server_default=sa.false(), nullable=False
        )
        batch_op.add_column(layout_changed)
        batch_op.add_column(sa.Column("health_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crawl_runs", schema=None) as batch_op:
        for name in ("health_reason", "layout_changed", "duration_seconds", "dropped", "responses_by_status"):
            batch_op.drop_column(name)
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_posts_raw_response_id", type_="foreignkey")
        batch_op.drop_column("raw_response_id")
    op.drop_index("ix_raw_responses_platform_id", table_name="raw_responses")
    op.drop_table("raw_responses")
