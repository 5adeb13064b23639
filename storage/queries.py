"""The few query functions every stage shares: platform rows, idempotent post inserts, stage counts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import (
    DetectionStatus,
    Lead,
    LeadState,
    Platform,
    Post,
    Priority,
    Ticket,
    TicketState,
)


def _insert_ignoring_conflicts(session: Session, model: type, index_elements: Sequence[str]) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return pg_insert(model).on_conflict_do_nothing(index_elements=list(index_elements))
    if dialect == "sqlite":
        return sqlite_insert(model).on_conflict_do_nothing(index_elements=list(index_elements))
    raise NotImplementedError(f"unsupported database dialect: {dialect}")


def sync_platforms(session: Session, platforms: Mapping[str, tuple[str, str, bool]]) -> None:
    """Make the platforms table mirror config.yaml: {id: (name, kind, enabled)}; rows are never deleted."""
    existing = {p.id: p for p in session.scalars(select(Platform))}
    for key, (name, kind, enabled) in platforms.items():
        row = existing.get(key)
        if row is None:
            session.add(Platform(id=key, name=name, kind=kind, enabled=enabled))
        else:
            row.name, row.kind, row.enabled = name, kind, enabled
    session.flush()


def insert_posts(session: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert posts, skipping any (platform_id, external_id) already stored; return how many were new."""
    batch = [dict(row) for row in rows]
    if not batch:
        return 0
    statement = _insert_ignoring_conflicts(session, Post, ["platform_id", "external_id"])
    result = session.execute(statement.returning(Post.id), batch)
    return len(result.all())


def posts_awaiting_detection(session: Session, limit: int = 1000, after_id: int = 0) -> list[Post]:
    """New posts in id order, a page at a time, so detection can resume after a crash."""
    statement = (
        select(Post)
        .where(Post.detection_status == DetectionStatus.NEW, Post.id > after_id)
        .order_by(Post.id)
        .limit(limit)
    )
    return list(session.scalars(statement))


def stage_counts(session: Session) -> dict[str, int]:
    """The figures `make demo` and the dashboard print: posts, leads, urgent leads, tickets."""
    open_states = (LeadState.NEW, LeadState.CLAIMED, LeadState.VERIFIED, LeadState.PROMOTED)
    return {
        "posts": session.scalar(select(func.count()).select_from(Post)) or 0,
        "leads": session.scalar(select(func.count()).select_from(Lead).where(Lead.state.in_(open_states)))
        or 0,
        "urgent_leads": session.scalar(
            select(func.count())
            .select_from(Lead)
            .where(Lead.state.in_(open_states), Lead.priority == Priority.URGENT)
        )
        or 0,
        "tickets": session.scalar(select(func.count()).select_from(Ticket)) or 0,
        "tickets_accepted": session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.state.in_((TicketState.SENT, TicketState.ACKNOWLEDGED)))
        )
        or 0,
    }
