"""Detection on several workers: posts wait "classified" for merging; classifications keep the request type

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 13:30:00.000000

Issue #18: detection workers classify batches in parallel and merge one at a time, in post order. A post
judged a lead is stored "classified" between the two steps, and merging reads what it needs from its
classification instead of running the model again, so classifications gain the request type and its
probability (NULL for rows from before: those posts were merged already).

posts.detection_status gains "classified" in its CHECK. SQLite rebuilds the table for it (batch mode;
storage/migrations/env.py keeps the rebuild from cascading, as for 0016); PostgreSQL alters in place.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The values as of this revision (not imported from storage.vocabulary, which may grow).
REQUEST_TYPES = ("problem", "question", "suggestion")
BEFORE = ("new", "detected")
AFTER = ("new", "classified", "detected")


def _condition(column: str, values: tuple[str, ...]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{value}'" for value in values))


def _detection_statuses(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("posts") as batch_op:
        batch_op.drop_constraint(op.f("ck_posts_detection_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_posts_detection_status"), _condition("detection_status", values)
        )


def upgrade() -> None:
    with op.batch_alter_table("classifications") as batch_op:
        batch_op.add_column(sa.Column("request_type", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("request_type_probability", sa.Float(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_classifications_request_type"), _condition("request_type", REQUEST_TYPES)
        )
    _detection_statuses(AFTER)


def downgrade() -> None:
    # A post caught between classifying and merging is classified again after the downgrade.
    posts = sa.table("posts", sa.column("detection_status", sa.String))
    op.execute(posts.update().where(posts.c.detection_status == "classified").values(detection_status="new"))
    _detection_statuses(BEFORE)
    with op.batch_alter_table("classifications") as batch_op:
        batch_op.drop_constraint(op.f("ck_classifications_request_type"), type_="check")
        batch_op.drop_column("request_type_probability")
        batch_op.drop_column("request_type")
