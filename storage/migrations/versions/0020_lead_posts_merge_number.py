"""Evidence numbered by the merge that stored it, so a detection worker reads only what others merged since

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 00:00:00.000000

Issue #18: before each merge a detection worker indexes the evidence other workers stored since its last
merge. Without a way to ask for "since", it read every open lead's evidence on every page: quadratic over
a night of a million posts. Merging is serialised by one lock and is the only writer of lead_posts, so a
counter taken under that lock orders the evidence as it was committed. Rows from before get 0: a worker
loads them whole when it starts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lead_posts") as batch_op:
        batch_op.add_column(sa.Column("merge_number", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index(op.f("ix_lead_posts_merge_number"), ["merge_number"])


def downgrade() -> None:
    with op.batch_alter_table("lead_posts") as batch_op:
        batch_op.drop_index(op.f("ix_lead_posts_merge_number"))
        batch_op.drop_column("merge_number")
