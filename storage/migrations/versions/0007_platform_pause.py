"""platforms.paused, paused_reason, paused_by: an admin's pause that sweeps respect

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 10:35:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("platforms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("paused_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("paused_by", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("platforms", schema=None) as batch_op:
        batch_op.drop_column("paused_by")
        batch_op.drop_column("paused_reason")
        batch_op.drop_column("paused")
