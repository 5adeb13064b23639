"""The SLA policy (verify.sla): deadlines from detection's facts, stamped once, read by every page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from settings import ReviewSettings
from storage.models import Lead, LeadState, Priority
from verify import sla

FOUND = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
REVIEW = ReviewSettings(urgent_sla_minutes=30, ordinary_sla_minutes=120)


@pytest.mark.parametrize(
    ("priority", "urgent_since", "due"),
    [
        (Priority.ORDINARY, None, FOUND + timedelta(minutes=120)),
        (Priority.URGENT, FOUND, FOUND + timedelta(minutes=30)),
        (Priority.URGENT, None, FOUND + timedelta(minutes=30)),  # urgent, moment not recorded: since found
        (Priority.URGENT, FOUND + timedelta(minutes=60), FOUND + timedelta(minutes=90)),
        (Priority.URGENT, FOUND + timedelta(minutes=100), FOUND + timedelta(minutes=120)),  # never later
    ],
)
def test_the_deadline_is_the_ordinary_allowance_cut_short_by_the_urgent_one(
    priority: Priority, urgent_since: datetime | None, due: datetime
) -> None:
    assert sla.due_at(priority, FOUND, urgent_since, REVIEW) == due


def test_stamping_writes_the_deadline_of_each_open_lead_detection_left_without_one(
    session, make_lead, settings
) -> None:
    ordinary = make_lead(found_at=FOUND, sla_due_at=None).id
    urgent = make_lead(priority=Priority.URGENT, found_at=FOUND, urgent_since=FOUND, sla_due_at=None).id
    decided = make_lead(found_at=FOUND, sla_due_at=None, state=LeadState.PROMOTED).id
    assert sla.stamp_deadlines(session, settings.review) == 2
    session.commit()
    session.expire_all()
    due = {lead_id: at for lead_id, at in session.execute(select(Lead.id, Lead.sla_due_at))}
    assert (due[ordinary], due[urgent], due[decided]) == (
        FOUND + timedelta(minutes=120),
        FOUND + timedelta(minutes=30),
        None,
    )


def test_a_lead_that_became_urgent_after_it_was_found_gets_the_earlier_deadline_once(
    session, make_lead, settings
) -> None:
    escalated_at = FOUND + timedelta(minutes=60)
    lead = make_lead(found_at=FOUND, sla_due_at=FOUND + timedelta(minutes=120))
    lead.priority, lead.urgent_since = Priority.URGENT, escalated_at  # as detection records a join
    session.commit()
    assert sla.stamp_deadlines(session, settings.review) == 1
    assert sla.stamp_deadlines(session, settings.review) == 0
    session.expire_all()
    assert session.get(Lead, lead.id).sla_due_at == FOUND + timedelta(minutes=90)


def test_a_stamped_deadline_is_left_alone(session, make_lead, settings) -> None:
    lead = make_lead(found_at=FOUND, sla_due_at=FOUND + timedelta(minutes=45))
    assert sla.stamp_deadlines(session, settings.review) == 0
    session.expire_all()
    assert session.get(Lead, lead.id).sla_due_at == FOUND + timedelta(minutes=45)


def test_the_clocks_of_a_lead_not_yet_stamped_follow_the_rule(session, make_lead, settings) -> None:
    lead = make_lead(found_at=FOUND, first_seen_at=FOUND - timedelta(minutes=10), sla_due_at=None)
    clocks = sla.sla_clocks(lead, settings.review)
    assert (clocks.from_first_post, clocks.from_found) == (
        FOUND + timedelta(minutes=110),
        FOUND + timedelta(minutes=120),
    )
