"""The read side of review: the filtered queue and its counts, a lead's evidence, similar leads, history."""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, exists, func, or_, select
from sqlalchemy.orm import Session

from settings import ReviewSettings
from storage.base import utcnow
from storage.models import (
    AuditEvent,
    Lead,
    LeadPost,
    LeadState,
    Post,
    Priority,
    RawResponse,
    Ticket,
    TicketState,
)

MAX_PAGE_SIZE = 100
MAX_SEARCH_CHARS = 100
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Leads still waiting for a decision: only these can breach their SLA.
OPEN_STATES = (LeadState.NEW, LeadState.CLAIMED)
SIMILAR_RECENT_DAYS = 7


class QueueSort(enum.StrEnum):
    URGENT = "urgent"  # urgent first, then SLA due soonest
    SCORE = "score"  # most confident detections first
    UNCERTAINTY = "uncertainty"  # scores nearest 0.5 first: where an analyst's label teaches the model most


@dataclass(frozen=True)
class LeadFilter:
    """What the queue page and GET /api/v1/leads filter on; every field is optional."""

    state: LeadState | None = None
    priority: Priority | None = None
    category: str | None = None
    district: str | None = None
    platform: str | None = None
    found_from: date | None = None  # Asia/Shanghai calendar days, inclusive
    found_to: date | None = None
    score_min: float | None = None
    score_max: float | None = None
    text: str | None = None
    sort: QueueSort = QueueSort.URGENT
    page: int = 1
    page_size: int = 20

    def query_params(self, **overrides: Any) -> dict[str, str]:
        """The filter as URL query parameters (empty ones left out), for paging and export links."""
        values: dict[str, str] = {}
        for item in fields(self):
            if item.name == "page_size":  # the page decides its size, not the URL
                continue
            value = overrides.get(item.name, getattr(self, item.name))
            if value is None or value == "":
                continue
            values[item.name] = value.isoformat() if isinstance(value, date) else str(value)
        return values


def _local_day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=SHANGHAI)


def filtered(criteria: LeadFilter, *, with_state: bool = True) -> Select[Lead]:
    """SELECT leads matching the filter (ordering and paging are added by the caller)."""
    statement = select(Lead)
    if with_state and criteria.state is not None:
        statement = statement.where(Lead.state == criteria.state)
    if criteria.priority is not None:
        statement = statement.where(Lead.priority == criteria.priority)
    if criteria.category:
        statement = statement.where(Lead.category == criteria.category)
    if criteria.district:
        statement = statement.where(Lead.district == criteria.district)
    if criteria.platform:
        evidence_on_platform = (
            select(LeadPost.lead_id)
            .join(Post, Post.id == LeadPost.post_id)
            .where(LeadPost.lead_id == Lead.id, Post.platform_id == criteria.platform)
        )
        statement = statement.where(exists(evidence_on_platform))
    if criteria.found_from is not None:
        statement = statement.where(Lead.found_at >= _local_day_start(criteria.found_from))
    if criteria.found_to is not None:
        statement = statement.where(Lead.found_at < _local_day_start(criteria.found_to + timedelta(days=1)))
    if criteria.score_min is not None:
        statement = statement.where(Lead.score >= criteria.score_min)
    if criteria.score_max is not None:
        statement = statement.where(Lead.score <= criteria.score_max)
    if criteria.text:
        needle = criteria.text.strip()[:MAX_SEARCH_CHARS]
        # autoescape: a "%" or "_" typed by the analyst is matched literally, not as a wildcard.
        statement = statement.where(
            or_(
                Lead.summary.contains(needle, autoescape=True),
                Lead.landmark.contains(needle, autoescape=True),
                Lead.street.contains(needle, autoescape=True),
            )
        )
    return statement


def _ordering(sort: QueueSort) -> list[Any]:
    if sort == QueueSort.SCORE:
        return [Lead.score.desc(), Lead.id]
    if sort == QueueSort.UNCERTAINTY:
        return [func.abs(Lead.score - 0.5), Lead.id]
    urgent_first = case((Lead.priority == Priority.URGENT, 0), else_=1)
    no_due_last = case((Lead.sla_due_at.is_(None), 1), else_=0)
    return [urgent_first, no_due_last, Lead.sla_due_at, Lead.id]


def page_size_of(criteria: LeadFilter) -> int:
    return min(max(criteria.page_size, 1), MAX_PAGE_SIZE)


def queue(*, session: Session, criteria: LeadFilter) -> tuple[list[Lead], int]:
    """One page of matching leads in the chosen order; (leads, total matching)."""
    base = filtered(criteria)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    size = page_size_of(criteria)
    offset = (max(criteria.page, 1) - 1) * size
    statement = base.order_by(*_ordering(criteria.sort)).offset(offset).limit(size)
    return list(session.scalars(statement)), total


def state_counts(*, session: Session, criteria: LeadFilter) -> dict[LeadState, int]:
    """How many leads match the other filters in each state (every state present, zero when none)."""
    matching = filtered(criteria, with_state=False).subquery()
    rows = session.execute(select(matching.c.state, func.count()).group_by(matching.c.state)).all()
    counts = dict.fromkeys(LeadState, 0)
    counts.update({LeadState(state): count for state, count in rows})
    return counts


def sla_breaches(*, session: Session, criteria: LeadFilter, now: datetime | None = None) -> int:
    """Open leads matching the filter whose SLA (counted from when weisu found them) has run out."""
    matching = filtered(criteria).where(Lead.state.in_(OPEN_STATES), Lead.sla_due_at < (now or utcnow()))
    return session.scalar(select(func.count()).select_from(matching.subquery())) or 0


def sla_minutes(priority: Priority, review: ReviewSettings) -> int:
    return review.urgent_sla_minutes if priority == Priority.URGENT else review.ordinary_sla_minutes


@dataclass(frozen=True)
class SlaClocks:
    """Both SLA clocks of a lead: from the first post's appearance and from when weisu found it."""

    from_first_post: datetime
    from_found: datetime
    open: bool

    def breached(self, now: datetime) -> bool:
        return self.open and min(self.from_first_post, self.from_found) < now


def sla_clocks(lead: Lead, review: ReviewSettings) -> SlaClocks:
    allowed = timedelta(minutes=sla_minutes(lead.priority, review))
    from_found = lead.sla_due_at or lead.found_at + allowed
    return SlaClocks(lead.first_seen_at + allowed, from_found, lead.state in OPEN_STATES)


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


def raw_evidence(*, session: Session, lead_id: int, post_id: int) -> RawResponse | None:
    """The raw response behind one of the lead's evidence posts; None when not the lead's or not kept."""
    statement = (
        select(RawResponse)
        .join(Post, Post.raw_response_id == RawResponse.id)
        .join(LeadPost, LeadPost.post_id == Post.id)
        .where(LeadPost.lead_id == lead_id, Post.id == post_id)
    )
    return session.scalar(statement)


def similar(*, session: Session, lead: Lead, limit: int = 5, now: datetime | None = None) -> list[Lead]:
    """Other leads about the same category in the same district that are still open or were recent."""
    if not lead.category:
        return []
    since = (now or utcnow()) - timedelta(days=SIMILAR_RECENT_DAYS)
    statement = (
        select(Lead)
        .where(Lead.id != lead.id, Lead.category == lead.category, Lead.state != LeadState.MERGED)
        .where(or_(Lead.state.in_(OPEN_STATES), Lead.found_at >= since))
        .order_by(Lead.found_at.desc(), Lead.id.desc())
        .limit(limit)
    )
    if lead.district:
        statement = statement.where(Lead.district == lead.district)
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
