"""The report's queries: leads, their posts' text and engagement, and tickets, as DataFrames.

A lead counts in the week its first post was published (``first_seen_at``, local time): that is when
the problem surfaced, whenever a crawl found it. Rejected leads (not a complaint, spam …) and leads
merged into another one are not counted: the first are no problem, the second are counted in the
lead they joined.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from storage.models import Lead, LeadPost, LeadState, Post, Ticket
from verify.reports.weeks import IsoWeek

#: How the report names a lead without a category or a district.
UNCATEGORISED = "未分类"
NO_DISTRICT = "未标明区"
#: The leads a report counts.
COUNTED_STATES = tuple(s for s in LeadState if s not in (LeadState.REJECTED, LeadState.MERGED))

LEAD_COLUMNS = ["lead_id", "week", "category", "district", "street", "landmark", "posts", "engagement"]
TICKET_COLUMNS = ["ticket_id", "category", "sent_at", "closed_at", "reassignments"]


def _counted(start: datetime, end: datetime):  # type: ignore[no-untyped-def]
    return and_(Lead.first_seen_at >= start, Lead.first_seen_at < end, Lead.state.in_(COUNTED_STATES))


def leads_frame(session: Session, start: datetime, end: datetime, zone: ZoneInfo) -> pd.DataFrame:
    """The counted leads first seen in [start, end): their week, place, posts and engagement (the sum
    of their posts' likes, replies and reposts)."""
    engagement = func.coalesce(func.sum(Post.likes + Post.replies + Post.reposts), 0)
    place = (Lead.id, Lead.first_seen_at, Lead.category, Lead.district, Lead.street, Lead.landmark)
    # One grouped pass over the window's leads and their posts only: an aggregate over every lead's
    # posts, joined afterwards, made PostgreSQL nest loops over the whole table.
    rows = session.execute(
        select(*place, func.count(Post.id), engagement)
        .outerjoin(LeadPost, LeadPost.lead_id == Lead.id)
        .outerjoin(Post, Post.id == LeadPost.post_id)
        .where(_counted(start, end))
        .group_by(*place)
        .order_by(Lead.id)
    ).all()
    records = [
        (
            lead_id,
            str(IsoWeek.of(seen.astimezone(zone).date())),
            category or UNCATEGORISED,
            district or NO_DISTRICT,
            street,
            landmark,
            int(posts),
            int(engagement),
        )
        for lead_id, seen, category, district, street, landmark, posts, engagement in rows
    ]
    return pd.DataFrame.from_records(records, columns=LEAD_COLUMNS)


def post_texts(session: Session, start: datetime, end: datetime) -> pd.DataFrame:
    """Each counted lead's posts in [start, end): lead_id, category, text (title and body)."""
    rows = session.execute(
        select(Lead.id, Lead.category, Post.title, Post.text)
        .join(LeadPost, LeadPost.lead_id == Lead.id)
        .join(Post, Post.id == LeadPost.post_id)
        .where(_counted(start, end))
        .order_by(Lead.id, Post.id)
    ).all()
    records = [
        (lead_id, category or UNCATEGORISED, " ".join(part for part in (title, text) if part))
        for lead_id, category, title, text in rows
    ]
    return pd.DataFrame.from_records(records, columns=["lead_id", "category", "text"])


def tickets_frame(session: Session, start: datetime, end: datetime) -> pd.DataFrame:
    """Delivered tickets sent or closed in [start, end), with their lead's category and the number of
    times the dispatch system moved them to another unit (退单, verify.sync)."""
    in_week = or_(
        and_(Ticket.sent_at >= start, Ticket.sent_at < end),
        and_(Ticket.closed_at >= start, Ticket.closed_at < end),
    )
    rows = session.execute(
        select(Ticket.id, Lead.category, Ticket.sent_at, Ticket.closed_at, Ticket.reassignments)
        .join(Lead, Lead.id == Ticket.lead_id)
        .where(Ticket.sent_at.is_not(None), in_week)
        .order_by(Ticket.id)
    ).all()
    records = [
        (ticket_id, category or UNCATEGORISED, sent, closed, int(moved or 0))
        for ticket_id, category, sent, closed, moved in rows
    ]
    return pd.DataFrame.from_records(records, columns=TICKET_COLUMNS)
