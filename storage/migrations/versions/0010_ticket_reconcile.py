"""tickets: delivery_unknown_since, reconcile_attempts, reconciled_at, reconcile_outcome (look, then resend)

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-02 15:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delivery_unknown_since", storage.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("reconcile_attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("reconciled_at", storage.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "reconcile_outcome",
                sa.Enum(
                    "found_by_attribute",
                    "found_by_description",
                    "absent",
                    "lookup_failed",
                    name="reconcileoutcome",
                    native_enum=False,
                    length=20,
                ),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("reconcile_outcome")
        batch_op.drop_column("reconciled_at")
        batch_op.drop_column("reconcile_attempts")
        batch_op.drop_column("delivery_unknown_since")
