"""Mask what was stored before: raw bodies (personal data, and author handles when the key is known),
and posts' and leads' text caught by the masks added since (landlines without separators, spaced
and 15-digit IDs, bank cards, QQ and WeChat IDs, 挂/学 plates)

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02 16:00:00.000000

Uses today's masking functions (storage.personal_data, storage.body_masking) on purpose: the point is that
old rows end up as a crawl would store them now. Rows are read a batch at a time in id order (keyset
pagination, so memory stays flat on SQLite and PostgreSQL) and written only when masking changed
them. ``raw_responses.sha256`` was always of the body as served and stays: the original can still
be proven.

Author handles: the handles behind a stored body were never kept, only their keyed hash
(posts.author_key). With ``WEISU_AUTHOR_HASH_KEY`` in the environment the migration hashes each
string of a body (JSON strings and numbers, HTML text and attribute values) and replaces those whose
hash is the author_key of a post parsed from that body, in every form (storage.body_masking). Without
the key no handle can be recognised, and a guessed key would silently find nothing: the bodies get
their personal data masked and the migration logs that their handles remain (run it with the key
set, or re-crawl, to replace them).

Masking cannot be undone: the downgrade changes nothing.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 200
log = logging.getLogger("alembic.runtime.migration")

raw_responses = sa.table(
    "raw_responses",
    sa.column("id", sa.Integer),
    sa.column("platform_id", sa.String),
    sa.column("content_type", sa.String),
    sa.column("body_gz", sa.LargeBinary),
)
posts = sa.table(
    "posts",
    sa.column("id", sa.Integer),
    sa.column("title", sa.String),
    sa.column("text", sa.Text),
    sa.column("content_hash", sa.String),
    sa.column("author_key", sa.String),
    sa.column("raw_response_id", sa.Integer),
)
leads = sa.table("leads", sa.column("id", sa.Integer), sa.column("summary", sa.String))


def _batches(connection: sa.Connection, table: Any, *columns: Any) -> Iterator[list[sa.Row[Any]]]:
    last = 0
    while True:
        query = sa.select(table.c.id, *columns).where(table.c.id > last).order_by(table.c.id).limit(BATCH)
        rows = list(connection.execute(query))
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _mask_raw_bodies(connection: sa.Connection, secret: str | None) -> int:
    from storage.body_masking import handle_replacements, handles_behind, mask_body
    from storage.queries import compress_body

    changed = 0
    columns = (raw_responses.c.platform_id, raw_responses.c.content_type, raw_responses.c.body_gz)
    for rows in _batches(connection, raw_responses, *columns):
        keys: dict[int, set[str]] = {}
        if secret:
            query = sa.select(posts.c.raw_response_id, posts.c.author_key).where(
                posts.c.raw_response_id.in_([row.id for row in rows]), posts.c.author_key.is_not(None)
            )
            for raw_id, key in connection.execute(query):
                keys.setdefault(raw_id, set()).add(key)
        for row in rows:
            body = gzip.decompress(row.body_gz)
            replacements: dict[str, str] = {}
            if secret and row.id in keys:
                handles = handles_behind(body, row.content_type, secret, row.platform_id, keys[row.id])
                replacements = handle_replacements(secret, row.platform_id, handles)
            masked = mask_body(body, row.content_type, replacements)
            if masked != body:
                statement = raw_responses.update().where(raw_responses.c.id == row.id)
                connection.execute(statement.values(body_gz=compress_body(masked)))
                changed += 1
    return changed


def _mask_posts(connection: sa.Connection) -> int:
    from storage.personal_data import content_hash, mask_personal_data

    changed = 0
    for rows in _batches(connection, posts, posts.c.title, posts.c.text):
        for row in rows:
            title = mask_personal_data(row.title)[0] if row.title else row.title
            text = mask_personal_data(row.text)[0]
            if (title, text) != (row.title, row.text):
                values = {"title": title, "text": text, "content_hash": content_hash(text)}
                connection.execute(posts.update().where(posts.c.id == row.id).values(**values))
                changed += 1
    return changed


def _mask_leads(connection: sa.Connection) -> int:
    from storage.personal_data import mask_personal_data

    changed = 0
    for rows in _batches(connection, leads, leads.c.summary):
        for row in rows:
            summary = mask_personal_data(row.summary)[0]
            if summary != row.summary:
                connection.execute(leads.update().where(leads.c.id == row.id).values(summary=summary))
                changed += 1
    return changed


def upgrade() -> None:
    connection = op.get_bind()
    secret = os.environ.get("WEISU_AUTHOR_HASH_KEY") or None
    bodies_kept = connection.scalar(sa.select(sa.func.count()).select_from(raw_responses))
    bodies = _mask_raw_bodies(connection, secret)
    log.info(
        "masked %d raw bodies, %d posts, %d lead summaries",
        bodies,
        _mask_posts(connection),
        _mask_leads(connection),
    )
    if secret is None and bodies_kept:
        log.warning(
            "WEISU_AUTHOR_HASH_KEY is not set: author handles in raw bodies stored before this "
            "revision remain (personal data in them is masked)"
        )


def downgrade() -> None:
    """Masking cannot be undone."""
