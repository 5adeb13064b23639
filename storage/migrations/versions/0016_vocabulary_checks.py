"""CHECK constraints on every enum-valued column: the database refuses a value the vocabulary lacks

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 10:30:00.000000

The columns are non-native enums (plain strings), so until now any string could be stored: by hand,
by an older version, or by code that wrote a free string (crawl_runs.status and audit_events.action
were plain String columns in the models). Each gets ``ck_<table>_<column>``, as leads.request_type
already has (0011).

Rows that already hold a value outside a list stop the upgrade before anything changes, with one line
naming the table, column and values: the constraint would refuse them, and guessing what a value no
version of weisu wrote should mean could lose a fact. Every value any version wrote is in the lists.

SQLite cannot add a constraint to a table, so there each table is rebuilt (batch mode, which copies the
rows and keeps the table's indexes and constraints). The rebuild drops the old table, which would
cascade into lead_posts and classifications with foreign keys enforced; storage/migrations/env.py turns
them off for the migration and checks every reference before committing, as SQLite's own recipe for
table changes does. PostgreSQL adds the constraints in place.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The values as of this revision (not imported from storage.vocabulary, which may grow).
ACCESS_STATUSES = ("ok", "login_wall", "captcha", "cookie_expired")
#: table -> column -> allowed values (NULL passes a CHECK, so nullable columns stay nullable).
CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "platforms": {"access_status": ACCESS_STATUSES},
    "crawl_runs": {
        "status": ("running", "ok", "partial", "failed", "interrupted"),
        "access_status": ACCESS_STATUSES,
    },
    "crawl_gaps": {"kind": ("listing", "detail", "thread"), "state": ("open", "recovered", "aged_out")},
    "posts": {"detection_status": ("new", "detected")},
    "classifications": {"jurisdiction": ("ours", "elsewhere", "unknown")},
    "leads": {
        "state": ("new", "claimed", "verified", "promoted", "rejected", "merged"),
        "priority": ("urgent", "ordinary"),
    },
    "audit_events": {
        "action": (
            "claim",
            "release",
            "expire",
            "verify",
            "promote",
            "reject",
            "merge",
            "note",
            "confirm",
            "repush",
            "dispatch_status",
            "dispatch_reassigned",
            "pause_platform",
            "resume_platform",
        )
    },
    "tickets": {
        "state": ("queued", "sent", "acknowledged", "failed", "unconfirmed"),
        "reconcile_outcome": ("found_by_attribute", "found_by_description", "absent", "lookup_failed"),
    },
    "users": {"role": ("analyst", "supervisor", "admin")},
}


class UnknownValues(RuntimeError):
    """Stored values the new constraints would refuse: the upgrade stops before changing anything."""


def _condition(column: str, values: tuple[str, ...]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{value}'" for value in values))


def _refuse_unknown_values() -> None:
    connection = op.get_bind()
    problems = []
    for table, columns in CHECKS.items():
        for column, values in columns.items():
            stored = sa.column(column, sa.String)
            query = sa.select(stored).distinct().select_from(sa.table(table, stored))
            unknown = sorted(
                v for v in connection.scalars(query.where(stored.is_not(None))) if v not in values
            )
            if unknown:
                problems.append(f"{table}.{column} holds {', '.join(map(repr, unknown[:10]))}")
    if problems:
        raise UnknownValues(
            "migration 0016 stopped, nothing changed: values outside the vocabulary: " + "; ".join(problems)
        )


def upgrade() -> None:
    _refuse_unknown_values()
    # Batch mode rebuilds the table on SQLite (a new constraint needs it); PostgreSQL alters in place.
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch_op:
            for column, values in columns.items():
                batch_op.create_check_constraint(op.f(f"ck_{table}_{column}"), _condition(column, values))


def downgrade() -> None:
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
