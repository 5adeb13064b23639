"""alerts and alert_deliveries: events people are told about once, and their per-channel outbox

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-03 10:00:00.000000

Also an index on crawl_runs (platform_id, id): the health rules read each platform's newest runs.
An alert's event key is unique (deriving an event again adds nothing); each channel's delivery is a row
with its state, tries, next try and last error, so a failed delivery is retried and then shown.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The values as of this revision (not imported from the models, which may grow).
ALERT_KINDS = ("urgent_lead", "sla_warning", "crawl_health", "job_failed")
DELIVERY_STATES = ("pending", "sent", "failed")


def upgrade() -> None:
    # The health rules read each platform's newest runs every 30 seconds: an index walked backwards.
    op.create_index("ix_crawl_runs_platform_id_id", "crawl_runs", ["platform_id", "id"], unique=False)
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column(
            "kind", sa.Enum(*ALERT_KINDS, name="alertkind", native_enum=False, length=20), nullable=False
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("platform_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_alerts_lead_id_leads")),
        sa.CheckConstraint(
            "kind IN ({})".format(", ".join(f"'{kind}'" for kind in ALERT_KINDS)), name=op.f("ck_alerts_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("event_key", name=op.f("uq_alerts_event_key")),
    )
    op.create_index(op.f("ix_alerts_created_at"), "alerts", ["created_at"], unique=False)
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column(
            "state",
            sa.Enum(*DELIVERY_STATES, name="deliverystate", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claim_expires_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_deliveries_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.CheckConstraint(
            "state IN ({})".format(", ".join(f"'{state}'" for state in DELIVERY_STATES)),
            name=op.f("ck_alert_deliveries_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint("alert_id", "channel", name=op.f("uq_alert_deliveries_alert_id_channel")),
    )
    op.create_index(
        "ix_alert_deliveries_state_next_attempt_at",
        "alert_deliveries",
        ["state", "next_attempt_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_state_next_attempt_at", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index(op.f("ix_alerts_created_at"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_crawl_runs_platform_id_id", table_name="crawl_runs")
