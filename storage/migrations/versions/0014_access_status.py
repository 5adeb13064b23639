"""platforms.access_status / access_reason and crawl_runs.access_status / access_reason: login walls,
captchas and expired cookies a crawl met (crawlers/walls.py)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 01:00:00.000000

Both columns are nullable: rows from before this revision, and runs that got no answer at all, say
nothing about access. No CHECK constraint, as for the other non-native enums of crawl_runs.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The values as of this revision (not imported from the models, which may grow).
ACCESS_STATUSES = ("ok", "login_wall", "captcha", "cookie_expired")
TABLES = ("platforms", "crawl_runs")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            status = sa.Enum(*ACCESS_STATUSES, name="accessstatus", native_enum=False, length=20)
            batch_op.add_column(sa.Column("access_status", status, nullable=True))
            batch_op.add_column(sa.Column("access_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("access_reason")
            batch_op.drop_column("access_status")
