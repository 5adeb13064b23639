"""classifications.jurisdiction and jurisdiction_reason (ours / elsewhere / unknown, and why)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 10:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("classifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jurisdiction", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("jurisdiction_reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("classifications", schema=None) as batch_op:
        batch_op.drop_column("jurisdiction_reason")
        batch_op.drop_column("jurisdiction")
