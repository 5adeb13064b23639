"""leads.urgent_since: when detection judged a lead urgent — the fact verify.sla derives deadlines from

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 07:00:00.000000

Detection used to compute `sla_due_at` itself; now it stores this fact and verify.sla writes the
deadline. Urgent leads from before this revision are taken as urgent since they were found: their
stored deadlines stay as they are (verify.sla.stamp_deadlines recomputes only leads with none, or
that became urgent after they were found).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE, no batch rebuild: SQLite rebuilds by copying `leads` and dropping the old
    # table, and with foreign keys enforced that drop would cascade into lead_posts (see 0011).
    op.add_column("leads", sa.Column("urgent_since", storage.base.UTCDateTime(timezone=True), nullable=True))
    leads = sa.table(
        "leads", sa.column("priority", sa.String), sa.column("found_at"), sa.column("urgent_since")
    )
    op.execute(leads.update().where(leads.c.priority == "urgent").values(urgent_since=leads.c.found_at))


def downgrade() -> None:
    # DROP COLUMN on both databases (SQLite >= 3.35).
    op.drop_column("leads", "urgent_since")
