"""The read side of review: the queue page, a lead's evidence, its ticket and its history."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from storage.models import AuditEvent, Lead, LeadPost, LeadState, Post, Priority, Ticket, TicketState

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class LeadFilter:
    state: LeadState | None = None
    page: int = 1
    page_size: int = 20


def queue(*, session: Session, criteria: LeadFilter) -> tuple[list[Lead], int]:
    """One page of leads, urgent first, then SLA due soonest (leads without an SLA last); (leads, total)."""
    base = select(Lead)
    if criteria.state is not None:
        base = base.where(Lead.state == criteria.state)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    urgent_first = case((Lead.priority == Priority.URGENT, 0), else_=1)
    no_due_last = case((Lead.sla_due_at.is_(None), 1), else_=0)
    size = min(max(criteria.page_size, 1), MAX_PAGE_SIZE)
    statement = (
        base.order_by(urgent_first, no_due_last, Lead.sla_due_at, Lead.id)
        .offset((max(criteria.page, 1) - 1) * size)
        .limit(size)
    )
    return list(session.scalars(statement)), total


def evidence(*, session: Session, lead_id: int, limit: int) -> list[Post]:
    """The lead's evidence posts, oldest first, at most ``limit`` of them."""
    statement = (
        select(Post)
        .join(LeadPost, LeadPost.post_id == Post.id)
        .where(LeadPost.lead_id == lead_id)
        .order_by(Post.published_at, Post.id)
        .limit(limit)
    )
    return list(session.scalars(statement))


def ticket_of(*, session: Session, lead_id: int) -> Ticket | None:
    return session.scalar(select(Ticket).where(Ticket.lead_id == lead_id))


def history(*, session: Session, lead_id: int) -> list[AuditEvent]:
    statement = select(AuditEvent).where(AuditEvent.lead_id == lead_id).order_by(AuditEvent.id)
    return list(session.scalars(statement))


def tickets(*, session: Session, state: TicketState | None = None, limit: int = 100) -> list[Ticket]:
    statement = select(Ticket).order_by(Ticket.id.desc()).limit(min(max(limit, 1), 500))
    if state is not None:
        statement = statement.where(Ticket.state == state)
    return list(session.scalars(statement))
