"""The dashboard's figures: per-day counts, leads per request type, SLA, live precision, analysts'
throughput, crawl health.

Counts over a window of days are grouped in Python by calendar day in the display zone
(verify.days.local_zone), so the same code runs on SQLite and PostgreSQL without dialect-specific
date functions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.base import utcnow
from storage.models import AuditEvent, CrawlRun, Lead, LeadPost, Post
from storage.queries import latest_runs
from storage.vocabulary import (
    AWAITING_DECISION_STATES,
    CONFIRMED_STATES,
    DECIDED_STATES,
    REQUEST_TYPE_LABELS,
    REQUEST_TYPE_ORDER,
    Action,
    LeadState,
    Priority,
    RequestType,
)
from verify.sla import overdue

UNCERTAIN = "不确定"
#: The analysts' decisions on a lead, counted per analyst.
DECISIONS = (Action.VERIFY, Action.REJECT, Action.MERGE)


def _day(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Precision:
    label: str
    verified: int
    reviewed: int

    @property
    def share(self) -> float:
        return self.verified / self.reviewed if self.reviewed else 0.0


@dataclass(frozen=True)
class TypeCounts:
    """Leads of one request type: found in the window, waiting for a decision now, promoted in the window."""

    request_type: RequestType
    label: str
    found: int
    open: int
    promoted: int


@dataclass(frozen=True)
class AnalystFigures:
    analyst: str
    decisions: int
    verified: int
    rejected: int
    merged: int
    agrees_with_model: float  # share of verify/reject decisions matching the model's call (score >= 0.5)
    confirmations: int


@dataclass(frozen=True)
class Dashboard:
    days: list[str]
    found: dict[str, dict[str, int]]
    verified: dict[str, dict[str, int]]
    urgent_found: int
    by_request_type: list[TypeCounts]
    open_breaches: int
    late_decisions: int
    by_category: list[Precision]
    by_platform: list[Precision]
    analysts: list[AnalystFigures]
    crawl: list[CrawlRun]


def _per_day(rows: list[tuple[datetime, str | None]], zone: ZoneInfo) -> dict[str, dict[str, int]]:
    grouped: dict[str, Counter[str]] = defaultdict(Counter)
    for at, category in rows:
        grouped[_day(at, zone)][category or UNCERTAIN] += 1
    return {day: dict(counter) for day, counter in grouped.items()}


def _precision(rows: list[tuple[str | None, LeadState, int]]) -> list[Precision]:
    verified: Counter[str] = Counter()
    reviewed: Counter[str] = Counter()
    for label, state, count in rows:
        name = label or UNCERTAIN
        reviewed[name] += count
        if state in CONFIRMED_STATES:
            verified[name] += count
    return sorted(
        (Precision(name, verified[name], reviewed[name]) for name in reviewed),
        key=lambda p: (-p.reviewed, p.label),
    )


def _analysts(session: Session, since: datetime) -> list[AnalystFigures]:
    decided = session.execute(
        select(AuditEvent.actor, AuditEvent.action, Lead.score)
        .join(Lead, Lead.id == AuditEvent.lead_id)
        .where(AuditEvent.at >= since, AuditEvent.action.in_((*DECISIONS, Action.CONFIRM)))
    ).all()
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for actor, action, score in decided:
        per[actor][action] += 1
        if action in (Action.VERIFY, Action.REJECT) and (action == Action.VERIFY) == (score >= 0.5):
            per[actor]["agree"] += 1
    figures = []
    for actor, counts in per.items():
        judged = counts[Action.VERIFY] + counts[Action.REJECT]
        figures.append(
            AnalystFigures(
                analyst=actor,
                decisions=sum(counts[a] for a in DECISIONS),
                verified=counts[Action.VERIFY],
                rejected=counts[Action.REJECT],
                merged=counts[Action.MERGE],
                agrees_with_model=counts["agree"] / judged if judged else 0.0,
                confirmations=counts[Action.CONFIRM],
            )
        )
    return sorted(figures, key=lambda f: (-f.decisions, f.analyst))


def _late_decisions(session: Session, since: datetime) -> int:
    """Leads decided in the window after their SLA was due (first decision per lead)."""
    first_decision = (
        select(AuditEvent.lead_id, func.min(AuditEvent.at).label("at"))
        .where(AuditEvent.action.in_(DECISIONS), AuditEvent.at >= since)
        .group_by(AuditEvent.lead_id)
        .subquery()
    )
    late = (
        select(func.count())
        .select_from(first_decision)
        .join(Lead, Lead.id == first_decision.c.lead_id)
        .where(Lead.sla_due_at < first_decision.c.at)
    )
    return session.scalar(late) or 0


def _by_request_type(session: Session, since: datetime) -> list[TypeCounts]:
    """Every request type in queue order, with zeros for a type no lead has."""
    found = select(Lead.request_type, func.count()).where(Lead.found_at >= since)
    waiting = select(Lead.request_type, func.count()).where(Lead.state.in_(AWAITING_DECISION_STATES))
    promoted = (
        select(Lead.request_type, func.count(func.distinct(Lead.id)))
        .join(AuditEvent, AuditEvent.lead_id == Lead.id)
        .where(AuditEvent.action == Action.PROMOTE, AuditEvent.at >= since)
    )
    counts = [
        {RequestType(kind): count for kind, count in session.execute(query.group_by(Lead.request_type))}
        for query in (found, waiting, promoted)
    ]
    return [
        TypeCounts(kind, REQUEST_TYPE_LABELS[kind], *(per_type.get(kind, 0) for per_type in counts))
        for kind in REQUEST_TYPE_ORDER
    ]


def build(session: Session, zone: ZoneInfo, days: int = 14, now: datetime | None = None) -> Dashboard:
    """Every figure the dashboard shows, over the last ``days`` calendar days in ``zone``."""
    now = now or utcnow()
    local_today = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    since = local_today - timedelta(days=days - 1)
    day_labels = [(since + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days)]
    found = session.execute(select(Lead.found_at, Lead.category).where(Lead.found_at >= since)).all()
    verified = session.execute(
        select(AuditEvent.at, Lead.category)
        .join(Lead, Lead.id == AuditEvent.lead_id)
        .where(AuditEvent.action == Action.VERIFY, AuditEvent.at >= since)
    ).all()
    urgent = (
        select(func.count()).select_from(Lead).where(Lead.priority == Priority.URGENT, Lead.found_at >= since)
    )
    breaches = select(func.count()).select_from(Lead).where(overdue(now))
    reviewed = Lead.state.in_(DECIDED_STATES)
    by_category = session.execute(
        select(Lead.category, Lead.state, func.count()).where(reviewed).group_by(Lead.category, Lead.state)
    ).all()
    # A lead with evidence on two platforms counts once for each of them.
    per_platform = (
        select(Post.platform_id, Lead.state, func.count(func.distinct(Lead.id)))
        .join(LeadPost, LeadPost.lead_id == Lead.id)
        .join(Post, Post.id == LeadPost.post_id)
        .where(reviewed)
        .group_by(Post.platform_id, Lead.state)
    )
    runs = latest_runs(session)
    return Dashboard(
        days=day_labels,
        found=_per_day([(at, category) for at, category in found], zone),
        verified=_per_day([(at, category) for at, category in verified], zone),
        urgent_found=session.scalar(urgent) or 0,
        by_request_type=_by_request_type(session, since),
        open_breaches=session.scalar(breaches) or 0,
        late_decisions=_late_decisions(session, since),
        by_category=_precision([(c, s, n) for c, s, n in by_category]),
        by_platform=_precision([(p, s, n) for p, s, n in session.execute(per_platform).all()]),
        analysts=_analysts(session, since),
        crawl=[runs[key] for key in sorted(runs)],
    )
