"""The read side of review: the filtered queue and its counts, a lead's evidence, similar leads, history."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Select, case, exists, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from storage.base import utcnow
from storage.models import AuditEvent, Lead, LeadPost, Post, RawResponse, Ticket
from storage.vocabulary import (
    AWAITING_DECISION_STATES,
    REQUEST_TYPE_ORDER,
    LeadState,
    Priority,
    RequestType,
    TicketState,
)
from verify.days import FIRST_DAY, LAST_DAY, end_utc, start_utc
from verify.inputs import require_storable
from verify.sla import overdue

MAX_PAGE_SIZE = 100
#: Deep enough for any real queue (100,000 pages of 100), small enough that the offset fits every database.
MAX_PAGE = 100_000
MAX_SEARCH_CHARS = 100
MAX_FIELD_CHARS = 50
MAX_PLATFORM_CHARS = 64
SIMILAR_RECENT_DAYS = 7


class QueueSort(enum.StrEnum):
    URGENT = "urgent"  # urgent first; in each priority problems, suggestions, questions; then SLA due soonest
    SCORE = "score"  # most confident detections first
    UNCERTAINTY = "uncertainty"  # scores nearest 0.5 first: where an analyst's label teaches the model most


FilterText = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(require_storable)]
Day = Annotated[
    date,
    Field(
        ge=FIRST_DAY,
        le=LAST_DAY,
        description=f"local day (schedules.timezone), inclusive, {FIRST_DAY} to {LAST_DAY}",
    ),
]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class LeadFilter(BaseModel):
    """The one validated query of the queue: the queue page, GET /api/v1/leads and both exports read it.

    Every field is optional; a blank value means "no filter". Bounds keep every value one the
    databases can compare and the day arithmetic can convert (no 500 on a hostile URL).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    state: LeadState | None = None
    priority: Priority | None = None
    type: RequestType | None = None
    category: Annotated[FilterText, Field(max_length=MAX_FIELD_CHARS)] | None = None
    district: Annotated[FilterText, Field(max_length=MAX_FIELD_CHARS)] | None = None
    platform: Annotated[FilterText, Field(max_length=MAX_PLATFORM_CHARS)] | None = None
    found_from: Day | None = None
    found_to: Day | None = None
    score_min: Fraction | None = None
    score_max: Fraction | None = None
    text: Annotated[FilterText, Field(max_length=MAX_SEARCH_CHARS)] | None = None
    sort: QueueSort = QueueSort.URGENT
    page: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20

    @model_validator(mode="before")
    @classmethod
    def _blank_means_unset(cls, data: Any) -> Any:
        # An empty form field ("category=") is no filter, not an invalid value.
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    def narrows_beyond_queue_index(self) -> bool:
        """True when the filter uses a column outside the (state, priority, request_type, sla) index."""
        extra = (self.category, self.district, self.platform, self.found_from, self.found_to, self.text)
        return any(value is not None for value in (*extra, self.score_min, self.score_max))

    def query_params(self, **overrides: Any) -> dict[str, str]:
        """The filter as URL query parameters (empty ones left out), for paging and export links."""
        values: dict[str, str] = {}
        for name in type(self).model_fields:
            if name == "page_size":  # the page decides its size, not the URL
                continue
            value = overrides.get(name, getattr(self, name))
            if value is None or value == "":
                continue
            values[name] = value.isoformat() if isinstance(value, date) else str(value)
        return values


def filtered(criteria: LeadFilter, *, zone: ZoneInfo, with_state: bool = True) -> Select[Lead]:
    """SELECT leads matching the filter, its days in ``zone`` (ordering and paging are the caller's)."""
    return _where(select(Lead), criteria, zone=zone, with_state=with_state)


def _where(statement: Any, criteria: LeadFilter, *, zone: ZoneInfo, with_state: bool = True) -> Any:
    """Add the filter's conditions to any SELECT over leads."""
    if with_state and criteria.state is not None:
        statement = statement.where(Lead.state == criteria.state)
    if criteria.priority is not None:
        statement = statement.where(Lead.priority == criteria.priority)
    if criteria.type is not None:
        statement = statement.where(Lead.request_type == criteria.type)
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
        statement = statement.where(Lead.found_at >= start_utc(criteria.found_from, zone))
    if criteria.found_to is not None:
        statement = statement.where(Lead.found_at < end_utc(criteria.found_to, zone))
    # A confidence range keeps most leads, so SQLite must not fetch them one by one through the
    # score index (3-4x slower than scanning); the index stays for sorting by score.
    if criteria.score_min is not None:
        statement = statement.where(_unindexed(Lead.score) >= criteria.score_min)
    if criteria.score_max is not None:
        statement = statement.where(_unindexed(Lead.score) <= criteria.score_max)
    if criteria.text:
        needle = criteria.text
        # autoescape: a "%" or "_" typed by the analyst is matched literally, not as a wildcard.
        statement = statement.where(
            or_(
                Lead.summary.contains(needle, autoescape=True),
                Lead.landmark.contains(needle, autoescape=True),
                Lead.street.contains(needle, autoescape=True),
            )
        )
    return statement


class _unindexed(FunctionElement[Any]):
    """A column SQLite must not read through an index; the plain column on other databases.

    E.g. with a filter on other columns, SQLite would walk the (state, priority, sla) index to group
    and fetch every row through it — about 8x slower on 100,000 leads than one plain scan with a
    small temporary B-tree. SQLite's documented way to keep a term off an index is a unary ``+``.
    """

    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(_unindexed)
def _plain_column(element: _unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_unindexed, "sqlite")
def _sqlite_unindexed(element: _unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


@dataclass(frozen=True)
class QueueSummary:
    """What the queue header shows, from one aggregate query over the filtered leads."""

    counts: dict[LeadState, int]  # per state, every filter but the state applied
    total: int  # matching every filter
    urgent: int  # urgent leads matching every filter
    breaches: int  # open leads matching every filter whose SLA (from when found) has run out
    #: Leads matching every filter per (priority, request type): the slices of the default order.
    slices: dict[tuple[Priority, RequestType], int]


def summarise(
    *, session: Session, criteria: LeadFilter, zone: ZoneInfo, now: datetime | None = None
) -> QueueSummary:
    """Counts per state and per (priority, type), the total, the urgent count and SLA breaches in a
    single pass over the leads; the filter's days are in ``zone`` (days.local_zone)."""
    late = case((overdue(now or utcnow()), 1), else_=0)
    # Filtered on state, priority and type alone, the (state, priority, type, sla) index covers it.
    columns: list[Any] = [Lead.state, Lead.priority, Lead.request_type]
    if criteria.narrows_beyond_queue_index():
        columns = [_unindexed(column) for column in columns]
    statement = _where(select(*columns, func.count(), func.sum(late)), criteria, zone=zone, with_state=False)
    statement = statement.group_by(*columns)
    counts = dict.fromkeys(LeadState, 0)
    slices: dict[tuple[Priority, RequestType], int] = {}
    total = urgent = breaches = 0
    for state, priority, kind, count, late_count in session.execute(statement):
        counts[LeadState(state)] += count
        if criteria.state is None or criteria.state == state:
            total += count
            breaches += late_count or 0
            urgent += count if priority == Priority.URGENT else 0
            key = (Priority(priority), RequestType(kind))
            slices[key] = slices.get(key, 0) + count
    return QueueSummary(counts=counts, total=total, urgent=urgent, breaches=breaches, slices=slices)


#: The default order's slices, first to last: urgent before ordinary, then REQUEST_TYPE_ORDER.
QUEUE_SLICES: tuple[tuple[Priority, RequestType], ...] = tuple(
    (priority, kind) for priority in (Priority.URGENT, Priority.ORDINARY) for kind in REQUEST_TYPE_ORDER
)


def _ordering(sort: QueueSort) -> list[Any]:
    if sort == QueueSort.SCORE:
        return [Lead.score.desc(), Lead.id]
    return [Lead.sla_due_at.asc().nulls_last(), Lead.id]


def _uncertainty_key(lead: Lead) -> tuple[float, int]:
    return abs(lead.score - 0.5), lead.id


def page_size_of(criteria: LeadFilter) -> int:
    return min(max(criteria.page_size, 1), MAX_PAGE_SIZE)


def page(*, session: Session, criteria: LeadFilter, zone: ZoneInfo, summary: QueueSummary) -> list[Lead]:
    """One page of matching leads in the chosen order."""
    size = page_size_of(criteria)
    offset = (max(criteria.page, 1) - 1) * size
    base = filtered(criteria, zone=zone)
    order = _ordering(criteria.sort)
    if criteria.sort == QueueSort.UNCERTAINTY:
        # Nearest 0.5 first, from two walks of the score index outward from 0.5 (no full sort).
        wanted = offset + size
        above = base.where(Lead.score >= 0.5).order_by(Lead.score.asc(), Lead.id).limit(wanted)
        below = base.where(Lead.score < 0.5).order_by(Lead.score.desc(), Lead.id).limit(wanted)
        nearest = sorted([*session.scalars(above), *session.scalars(below)], key=_uncertainty_key)
        return nearest[offset:wanted]
    if criteria.sort == QueueSort.SCORE:
        return list(session.scalars(base.order_by(*order).offset(offset).limit(size)))
    # Urgent first, and within a priority problems, then suggestions, then questions (kept, but a
    # question needs only an answer): page through each (priority, type) slice in SLA order, so each
    # walks the (priority, request_type, sla_due_at) index instead of sorting every lead.
    leads: list[Lead] = []
    for priority, kind in QUEUE_SLICES:
        count = summary.slices.get((priority, kind), 0)
        if offset >= count:
            offset -= count
            continue
        part = base.where(Lead.priority == priority, Lead.request_type == kind).order_by(*order)
        leads += session.scalars(part.offset(offset).limit(size - len(leads)))
        offset = 0
        if len(leads) >= size:
            break
    return leads


def queue(*, session: Session, criteria: LeadFilter, zone: ZoneInfo) -> tuple[list[Lead], int]:
    """One page of matching leads in the chosen order; (leads, total matching)."""
    summary = summarise(session=session, criteria=criteria, zone=zone)
    return page(session=session, criteria=criteria, zone=zone, summary=summary), summary.total


def state_counts(*, session: Session, criteria: LeadFilter, zone: ZoneInfo) -> dict[LeadState, int]:
    """How many leads match the other filters in each state (every state present, zero when none)."""
    return summarise(session=session, criteria=criteria, zone=zone).counts


def sla_breaches(
    *, session: Session, criteria: LeadFilter, zone: ZoneInfo, now: datetime | None = None
) -> int:
    """Open leads matching the filter whose SLA (counted from when weisu found them) has run out."""
    return summarise(session=session, criteria=criteria, zone=zone, now=now).breaches


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
        .where(or_(Lead.state.in_(AWAITING_DECISION_STATES), Lead.found_at >= since))
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
