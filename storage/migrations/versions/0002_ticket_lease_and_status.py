"""ticket lease (claimed_by, claim_expires_at) and dispatch status sync (status, notes, unit) columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 07:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("claim_expires_at", storage.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("dispatch_status", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("status_notes", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("status_checked_at", storage.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("closed_at", storage.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("agency_responsible", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("reassignments", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("reassignments")
        batch_op.drop_column("agency_responsible")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("status_checked_at")
        batch_op.drop_column("status_notes")
        batch_op.drop_column("dispatch_status")
        batch_op.drop_column("claim_expires_at")
        batch_op.drop_column("claimed_by")
