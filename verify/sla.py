"""The SLA policy: how long a lead may wait for an analyst's decision, and its deadline — decided here only.

Detection stores facts (when weisu found a lead, whether and since when it is urgent); this module
turns them into deadlines. `stamp_deadlines` writes them to `leads.sla_due_at` after each detection
run, so the queue can walk its (state, priority, type, sla) index; every reader (the queue and its
breach count, the lead page, the dashboard) reads that column or `sla_clocks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from settings import ReviewSettings
from storage.models import Lead
from storage.vocabulary import AWAITING_DECISION_STATES, Priority


def sla_minutes(priority: Priority, review: ReviewSettings) -> int:
    """Minutes a lead of this priority may wait for a decision."""
    return review.urgent_sla_minutes if priority == Priority.URGENT else review.ordinary_sla_minutes


def due_at(
    priority: Priority, found_at: datetime, urgent_since: datetime | None, review: ReviewSettings
) -> datetime:
    """A lead's deadline: the ordinary allowance from when it was found; for an urgent lead, cut short
    by the urgent allowance from when it became urgent (when found, if born urgent or not recorded)."""
    due = found_at + timedelta(minutes=review.ordinary_sla_minutes)
    if priority != Priority.URGENT:
        return due
    return min(due, (urgent_since or found_at) + timedelta(minutes=review.urgent_sla_minutes))


def overdue(now: datetime) -> ColumnElement[bool]:
    """SQL: an open lead whose deadline has passed at ``now``."""
    return and_(Lead.state.in_(AWAITING_DECISION_STATES), Lead.sla_due_at < now)


def stamp_deadlines(session: Session, review: ReviewSettings) -> int:
    """Write the deadline of every open lead that has none yet or became urgent after it was found;
    how many changed.

    Run after detection (the CLI's detect, the sweeps, the demo). Idempotent: a lead whose stored
    deadline already follows the rule is left alone.
    """
    rows = session.execute(
        select(Lead.id, Lead.priority, Lead.found_at, Lead.urgent_since, Lead.sla_due_at).where(
            Lead.state.in_(AWAITING_DECISION_STATES),
            or_(Lead.sla_due_at.is_(None), Lead.urgent_since > Lead.found_at),
        )
    ).all()
    changed = 0
    for lead_id, priority, found_at, urgent_since, stored in rows:
        due = due_at(priority, found_at, urgent_since, review)
        if due != stored:
            session.execute(
                update(Lead)
                .where(Lead.id == lead_id)
                .values(sla_due_at=due)
                .execution_options(synchronize_session=False)
            )
            changed += 1
    session.flush()
    return changed


@dataclass(frozen=True)
class SlaClocks:
    """Both SLA clocks of a lead: from the first post's appearance and from when weisu found it."""

    from_first_post: datetime
    from_found: datetime
    open: bool

    def breached(self, now: datetime) -> bool:
        return self.open and min(self.from_first_post, self.from_found) < now


def sla_clocks(lead: Lead, review: ReviewSettings) -> SlaClocks:
    """The lead page's and queue's two clocks; a lead not stamped yet gets the rule's deadline."""
    allowed = timedelta(minutes=sla_minutes(lead.priority, review))
    from_found = lead.sla_due_at or due_at(lead.priority, lead.found_at, lead.urgent_since, review)
    return SlaClocks(lead.first_seen_at + allowed, from_found, lead.state in AWAITING_DECISION_STATES)
