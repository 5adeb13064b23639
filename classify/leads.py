"""A lead made or joined by one post: its draft before it is stored, its summary, its merge anchors,
and how evidence changes it (score, request type, priority)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Protocol

from classify.model import Prediction
from classify.places import Place
from classify.urgency import Urgency
from storage.models import Lead
from storage.vocabulary import REQUEST_TYPE_ORDER, LeadState, Priority, RequestType

SUMMARY_CHARS = 120
_FIRST_SENTENCE = re.compile(r"^(.+?[。！？!?\n])")


class Evidence(Protocol):
    """What a lead reads of a post: an ORM Post, or the row merging loads (storage.queries.PostToMerge)."""

    @property
    def title(self) -> str | None: ...
    @property
    def text(self) -> str: ...
    @property
    def published_at(self) -> datetime | None: ...
    @property
    def fetched_at(self) -> datetime: ...


def summarise(post: Evidence) -> str:
    """A bounded one-liner: the title, else the first sentence of the text."""
    if post.title and post.title.strip():
        return post.title.strip()[:SUMMARY_CHARS]
    text = (post.text or "").strip()
    match = _FIRST_SENTENCE.match(text)
    return (match.group(1) if match else text)[:SUMMARY_CHARS].strip()


def _utc(value: datetime | None) -> datetime | None:
    """Aware UTC (storage refuses naive times; a naive one from a driver is UTC already)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class Draft:
    """A lead made on this page: the page's new leads are inserted together, in one statement."""

    state: LeadState
    priority: Priority
    urgency_reason: str | None
    category: str | None
    category_probability: float | None
    request_type: RequestType
    request_type_probability: float | None
    district: str | None
    street: str | None
    landmark: str | None
    summary: str
    score: float
    top_terms: list[Any]
    model_version: str
    first_seen_at: datetime
    last_seen_at: datetime
    found_at: datetime
    evidence_count: int
    urgent_since: datetime | None
    id: int | None = None

    def row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "id"}


def anchors(district: str | None, landmark: str | None, urgency_reason: str | None) -> frozenset[str]:
    """ "district|landmark|rule" for each urgency rule that fired on a text naming both places.

    The reason reads "台阶破损: 台阶断了; 井盖: 井盖丢失" (classify.urgency.assess): rule names before
    the colons."""
    if not (district and landmark and urgency_reason):
        return frozenset()
    rules = (part.split(":", 1)[0].strip() for part in urgency_reason.split(";"))
    return frozenset(f"{district}|{landmark}|{rule}" for rule in rules if rule)


def request_type(prediction: Prediction) -> RequestType:
    """The post's request type; a problem when the model has no type model, as every lead was before
    types were modelled (the probability then stays None: no model judged it)."""
    # No type: a model without a type model, or a post below the threshold made a lead by an urgency
    # rule (Detector.predict types only what passes the threshold): a hazard is a problem to fix.
    return RequestType(prediction.request_type) if prediction.request_type else RequestType.PROBLEM


def new_lead(post: Evidence, prediction: Prediction, place: Place, urgency: Urgency, model: str) -> Draft:
    now = datetime.now(UTC)
    seen = _utc(post.published_at) or _utc(post.fetched_at) or now
    return Draft(
        state=LeadState.NEW,
        priority=Priority.URGENT if urgency.urgent else Priority.ORDINARY,
        urgency_reason=urgency.reason,
        category=prediction.category,
        category_probability=prediction.category_probability,
        request_type=request_type(prediction),
        request_type_probability=prediction.request_type_probability,
        district=place.district,
        street=place.street,
        landmark=place.landmark,
        summary=summarise(post),
        score=prediction.relevance,
        top_terms=prediction.top_terms,
        model_version=model,
        first_seen_at=seen,
        last_seen_at=seen,
        found_at=now,
        evidence_count=1,
        urgent_since=now if urgency.urgent else None,
    )


def join_lead(lead: Lead | Draft, post: Evidence, prediction: Prediction, urgency: Urgency) -> None:
    now = datetime.now(UTC)
    seen = _utc(post.published_at) or _utc(post.fetched_at) or now
    lead.evidence_count += 1
    lead.last_seen_at = max(lead.last_seen_at, seen)
    lead.first_seen_at = min(lead.first_seen_at, seen)
    # Independent reports make the lead more likely real: combine as a noisy-OR.
    lead.score = round(1 - (1 - lead.score) * (1 - prediction.relevance), 4)
    # The lead takes the most pressing type among its posts (storage.models.REQUEST_TYPE_ORDER): the
    # posts tell of one situation, and once anyone reports it broken it is a problem to fix, however
    # many others only ask about it. Left a question, it would wait behind every problem of its priority.
    kind = request_type(prediction)
    if REQUEST_TYPE_ORDER.index(kind) < REQUEST_TYPE_ORDER.index(RequestType(lead.request_type)):
        lead.request_type, lead.request_type_probability = kind, prediction.request_type_probability
    if urgency.urgent and lead.priority != Priority.URGENT:
        lead.priority = Priority.URGENT
        lead.urgency_reason = urgency.reason
        lead.urgent_since = now  # a fact: verify.sla derives the deadline from it
