"""leads.request_type (problem / question / suggestion) and request_type_probability; the queue indexes
gain the type, which orders leads within a priority

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 21:45:00.000000

Leads made before this migration become problems. Until now every lead was one: the relevance model
was trained on complaints, the queue ranked them all alike and any of them could be promoted. Calling
them problems keeps each old lead exactly where it stood in the queue and in the workflow; calling
them questions would push them down the queue and change how they may be promoted on a guess. Their
probability stays NULL, which says that no model judged their type. The column is then NOT NULL, so
every lead has a type and the queue's filter and order never meet an unknown one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The values as of this revision (not imported from the models, which may grow).
REQUEST_TYPES = ("problem", "question", "suggestion")


def upgrade() -> None:
    # Plain ALTER TABLE statements only, no batch table rebuild: SQLite rebuilds by copying `leads` and
    # dropping the old table, and with foreign keys enforced that drop would cascade into lead_posts.
    # So the CHECK is written inline in the ADD COLUMN (valid on SQLite and PostgreSQL alike), since
    # SQLite cannot add a constraint to an existing table.
    allowed = ", ".join(f"'{value}'" for value in REQUEST_TYPES)
    op.execute(
        "ALTER TABLE leads ADD COLUMN request_type VARCHAR(20) DEFAULT 'problem' NOT NULL "
        f"CONSTRAINT ck_leads_request_type CHECK (request_type IN ({allowed}))"
    )
    op.add_column("leads", sa.Column("request_type_probability", sa.Float(), nullable=True))
    op.drop_index("ix_leads_state_priority_sla", table_name="leads")
    op.drop_index("ix_leads_priority_sla", table_name="leads")
    op.create_index(
        "ix_leads_state_priority_type_sla", "leads", ["state", "priority", "request_type", "sla_due_at"]
    )
    op.create_index("ix_leads_priority_type_sla", "leads", ["priority", "request_type", "sla_due_at"])


def downgrade() -> None:
    op.drop_index("ix_leads_priority_type_sla", table_name="leads")
    op.drop_index("ix_leads_state_priority_type_sla", table_name="leads")
    op.create_index("ix_leads_priority_sla", "leads", ["priority", "sla_due_at"])
    op.create_index("ix_leads_state_priority_sla", "leads", ["state", "priority", "sla_due_at"])
    op.drop_column("leads", "request_type_probability")
    # Once 0016 has rebuilt `leads` on SQLite, the CHECK is the table's, not the column's, and SQLite
    # refuses to drop a column a table constraint names: drop both in one batch (a rebuild there, with
    # foreign keys off: storage/migrations/env.py); PostgreSQL drops them in place.
    with op.batch_alter_table("leads") as batch_op:
        batch_op.drop_constraint(op.f("ck_leads_request_type"), type_="check")
        batch_op.drop_column("request_type")
