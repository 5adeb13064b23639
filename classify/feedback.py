"""Analysts' decisions as labelled examples for `weisu retrain`, read from leads and their audit trail.

* verified or promoted lead → each evidence post is a "lead" example with the lead's category as it
  stands now (an analyst's correction replaces the model's guess; an uncertain, uncorrected category
  teaches relevance only);
* rejected as "not a complaint" or "spam" → each evidence post is a "noise" example;
* any other rejection (outside the city, already handled, duplicate) says nothing about whether the
  text is a complaint, so it is not used.

Feedback only ever trains. Its examples are grouped like the corpus's (duplicates share a group), so
that training can leave out any text that duplicates a held-out corpus row.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from classify.corpus import LEAD, NOISE, Example, group_key
from storage.models import AuditEvent, Lead, LeadPost, Post, title_and_text
from storage.vocabulary import CONFIRMED_STATES, DECIDED_STATES, Action, RejectReason

#: The reject reasons that mean "this text is no lead".
NOISE_REASONS = frozenset({RejectReason.NOT_A_COMPLAINT, RejectReason.SPAM})
FEEDBACK_KIND, FEEDBACK_NOISE_KIND = "feedback", "noise:feedback"


@dataclass
class Feedback:
    examples: list[Example] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def _reject_reasons(session: Session) -> dict[int, str]:
    """The latest reject reason of every lead that was rejected (a lead is rejected at most once)."""
    rows = session.execute(
        select(AuditEvent.lead_id, AuditEvent.reason)
        .where(AuditEvent.action == Action.REJECT, AuditEvent.lead_id.is_not(None))
        .order_by(AuditEvent.id)
    )
    return {lead_id: reason or "" for lead_id, reason in rows if lead_id is not None}


def _example(text: str, relevance: str, category: str | None, kind: str) -> Example:
    return Example(text, relevance, category, kind, group_key(text, relevance), validation=False)


def load_feedback(session: Session) -> Feedback:
    """Every labelled example the analysts' decisions give, with counts of what was used and skipped."""
    feedback = Feedback()
    reasons = _reject_reasons(session)
    rows = session.execute(
        select(Lead.id, Lead.state, Lead.category, Post.title, Post.text)
        .join(LeadPost, LeadPost.lead_id == Lead.id)
        .join(Post, Post.id == LeadPost.post_id)
        .where(Lead.state.in_(DECIDED_STATES))
        .order_by(Lead.id, Post.id)
    )
    for lead_id, state, category, title, text in rows:
        body = title_and_text(title, text)
        if state in CONFIRMED_STATES:
            feedback.examples.append(_example(body, LEAD, category, FEEDBACK_KIND))
            feedback.counts["lead"] += 1
        elif reasons.get(lead_id) in NOISE_REASONS:
            feedback.examples.append(_example(body, NOISE, None, FEEDBACK_NOISE_KIND))
            feedback.counts["noise"] += 1
        else:
            feedback.counts["not_used"] += 1  # rejected for where or when, not for what it says
    return feedback
