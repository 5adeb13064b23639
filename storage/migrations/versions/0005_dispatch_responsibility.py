"""responsibility list (职责清单): category (+ district, street) → responsible unit (issue #6)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 08:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "responsibility_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("district", sa.String(length=50), server_default="", nullable=False),
        sa.Column("street", sa.String(length=100), server_default="", nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("updated_by", sa.String(length=100), nullable=True),
        sa.Column("updated_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responsibility_rules")),
        sa.UniqueConstraint(
            "category", "district", "street", name=op.f("uq_responsibility_rules_category_district_street")
        ),
    )


def downgrade() -> None:
    op.drop_table("responsibility_rules")
