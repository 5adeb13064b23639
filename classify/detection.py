"""`weisu detect`: classify new posts; relevant ones become leads or join an open lead, idempotently."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from classify.jurisdiction import decide as decide_jurisdiction
from classify.merging import LeadIndex, shingles
from classify.model import Detector, Prediction, load_active
from classify.places import Place, extract_place
from classify.text import clear_cache
from classify.urgency import Urgency, assess
from settings import CitySettings, Settings
from storage.db import session_scope
from storage.models import Classification, Lead, LeadPost, Post, title_and_text
from storage.queries import count_awaiting_detection, posts_awaiting_detection
from storage.vocabulary import (
    LIVE_STATES,
    REQUEST_TYPE_ORDER,
    DetectionStatus,
    LeadState,
    Priority,
    RequestType,
)

PAGE_SIZE = 500
#: When an urgent rule fires, a post needs only this relevance to become a lead: a gas smell or a
#: missing manhole cover told in one colloquial line must not be lost to the model's doubt.
URGENT_RELEVANCE_FLOOR = 0.1
SUMMARY_CHARS = 120
#: Only leads seen this recently are merge candidates: an old problem reported again is a new lead.
MERGE_WINDOW = timedelta(days=30)
_FIRST_SENTENCE = re.compile(r"^(.+?[。！？!?\n])")
# The tables themselves, for set-wise Core statements (the ORM would flush object by object).
_CLASSIFICATIONS, _LEADS, _LEAD_POSTS, _POSTS = (
    cast(Table, model.__table__) for model in (Classification, Lead, LeadPost, Post)
)


@dataclass
class DetectSummary:
    posts_seen: int = 0
    classified: int = 0
    leads_created: int = 0
    leads_updated: int = 0
    urgent: int = 0
    dropped_elsewhere: int = 0

    def summary(self) -> str:
        return (
            f"检测 detect: {self.posts_seen} posts seen, {self.classified} classified, "
            f"{self.leads_created} new leads ({self.urgent} urgent), {self.leads_updated} leads joined by "
            f"evidence, {self.dropped_elsewhere} dropped as another city's"
        )

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def summarise(post: Post) -> str:
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


class _OpenLeads:
    """The open leads of the merge window in a LeadIndex; loaded once per run, extended as leads are made."""

    def __init__(self, session: Session, now: datetime, city: CitySettings) -> None:
        self.index = LeadIndex()
        # Per lead number: its id, or its draft until the page is stored.
        self.handles: list[int | _Draft] = []
        self._numbers: dict[int, int] = {}  # lead id, or id() of a draft -> lead number
        rows = session.execute(
            select(
                Lead.id,
                Lead.district,
                Lead.category,
                Lead.landmark,
                Lead.urgency_reason,
                Post.title,
                Post.text,
            )
            .join(LeadPost, LeadPost.lead_id == Lead.id)
            .join(Post, Post.id == LeadPost.post_id)
            .where(Lead.state.in_(LIVE_STATES), Lead.last_seen_at >= now - MERGE_WINDOW)
            .order_by(Lead.id, Post.id)
        )
        for lead_id, district, category, landmark, reason, title, text in rows:
            evidence = title_and_text(title, text)
            place = extract_place(evidence, city)
            self.add(
                lead_id, shingles(evidence), place, district, category, anchors(district, landmark, reason)
            )

    def add(
        self,
        lead: int | _Draft,
        grams: frozenset[str],
        place: Place,
        district: str | None,
        category: str | None,
        hazards: frozenset[str] = frozenset(),
    ) -> None:
        key = lead if isinstance(lead, int) else id(lead)
        districts = frozenset(place.districts) | ({district} if district else frozenset())
        number = self.index.add(self._numbers.get(key), grams, districts, category, hazards)
        if number == len(self.handles):
            self.handles.append(lead)
            self._numbers[key] = number

    def match(
        self,
        grams: frozenset[str],
        place: Place,
        category: str | None,
        threshold: float,
        hazards: frozenset[str] = frozenset(),
    ) -> int | _Draft | None:
        number = self.index.match(grams, frozenset(place.districts), category, threshold, hazards)
        return None if number is None else self.handles[number]

    def settle(self) -> None:
        """After a page's drafts are inserted, keep their ids."""
        for number, lead in enumerate(self.handles):
            if isinstance(lead, _Draft):
                assert lead.id is not None
                del self._numbers[id(lead)]
                self.handles[number] = lead.id
                self._numbers[lead.id] = number


@dataclass
class _Draft:
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


def _new_lead(post: Post, prediction: Prediction, place: Place, urgency: Urgency, model: str) -> _Draft:
    now = datetime.now(UTC)
    seen = _utc(post.published_at) or _utc(post.fetched_at) or now
    return _Draft(
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


def _join_lead(lead: Lead | _Draft, post: Post, prediction: Prediction, urgency: Urgency) -> None:
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


def local_entry_points(settings: Settings) -> set[tuple[str, str | None]]:
    """(platform, entry-point label) pairs configured ``local``: they list only our city's content."""
    return {
        (key, entry.label)
        for key, platform in settings.platforms.items()
        for entry in platform.entry_points
        if entry.local
    }


def _detect_page(
    settings: Settings,
    session: Session,
    detector: Detector,
    posts: list[Post],
    open_leads: _OpenLeads,
    summary: DetectSummary,
) -> None:
    texts = [title_and_text(p.title, p.text) for p in posts]
    config = settings.classify
    local_entries = local_entry_points(settings)
    predictions = detector.predict(
        texts,
        config.relevance_threshold,
        config.category_min_probability,
        explain_above=URGENT_RELEVANCE_FLOOR,
        categorise_above=URGENT_RELEVANCE_FLOOR,  # below it no post can become a lead
    )
    ids = [p.id for p in posts]
    # One query each for what a crashed or concurrent run may already have written for this page.
    classified = set(
        session.scalars(
            select(Classification.post_id).where(
                Classification.post_id.in_(ids), Classification.model_version == detector.version
            )
        )
    )
    evidence = set(session.scalars(select(LeadPost.post_id).where(LeadPost.post_id.in_(ids))))
    links: list[tuple[int | _Draft, int]] = []  # (lead, post id)
    new_classifications: list[dict[str, Any]] = []
    drafts: list[_Draft] = []
    joins: list[tuple[int, Post, Prediction, Urgency]] = []
    for post, text, prediction in zip(posts, texts, predictions, strict=True):
        summary.posts_seen += 1
        place = extract_place(text, settings.city)
        where = decide_jurisdiction(
            text,
            place,
            settings.city,
            ip_location=post.ip_location,
            local_entry=post.entry_point if (post.platform_id, post.entry_point) in local_entries else None,
        )
        urgency = assess(text, config.urgent_terms)
        is_lead = prediction.is_lead or (urgency.urgent and prediction.relevance >= URGENT_RELEVANCE_FLOOR)
        values = {
            "post_id": post.id,
            "model_version": detector.version,
            "relevance": prediction.relevance,
            "is_lead": is_lead and not where.elsewhere,
            "category": prediction.category,
            "category_probability": prediction.category_probability,
            "urgent": urgency.urgent,
            "urgency_reason": urgency.reason,
            "district": place.district,
            "street": place.street,
            "landmark": place.landmark,
            "jurisdiction": where.jurisdiction.value,
            "jurisdiction_reason": where.reason,
            "top_terms": prediction.top_terms,
        }
        if post.id not in classified:
            new_classifications.append(values)
            summary.classified += 1
        if not is_lead:
            continue
        if where.elsewhere:
            summary.dropped_elsewhere += 1
            continue
        if post.id in evidence:
            continue  # already evidence (a crashed run's page committed elsewhere): never count twice
        grams = shingles(text)
        hazards = anchors(place.district, place.landmark, urgency.reason)
        match = open_leads.match(grams, place, prediction.category, config.merge_similarity, hazards)
        if match is None:
            draft = _new_lead(post, prediction, place, urgency, detector.version)
            drafts.append(draft)
            open_leads.add(draft, grams, place, draft.district, draft.category, hazards)
            links.append((draft, post.id))
            summary.leads_created += 1
            summary.urgent += int(urgency.urgent)
            continue
        if isinstance(match, _Draft):
            _join_lead(match, post, prediction, urgency)
        else:
            joins.append((match, post, prediction, urgency))  # stored leads: loaded together below
        # A lead's district and category are indexed with its first evidence already.
        open_leads.add(match, grams, place, None, None, hazards)
        links.append((match, post.id))
        summary.leads_updated += 1
    if joins:
        stored = {
            lead.id: lead for lead in session.scalars(select(Lead).where(Lead.id.in_({j[0] for j in joins})))
        }
        for lead_id, post, prediction, urgency in joins:
            _join_lead(stored[lead_id], post, prediction, urgency)
    _store_page(session, ids, new_classifications, drafts, links)
    open_leads.settle()


def _store_page(
    session: Session,
    post_ids: list[int],
    classifications: list[dict[str, Any]],
    drafts: list[_Draft],
    links: list[tuple[int | _Draft, int]],
) -> None:
    """A page's writes as a few set-wise statements (Core, not the ORM's per-object unit of work):
    classifications and evidence as executemany, new leads as one multi-row INSERT … RETURNING id,
    the posts' status as one UPDATE. Joined leads that existed before are the ORM's, flushed with the
    commit."""
    if classifications:
        session.execute(insert(_CLASSIFICATIONS), classifications)
    if drafts:
        statement = insert(_LEADS).returning(_LEADS.c.id, sort_by_parameter_order=True)
        ids = session.execute(statement, [draft.row() for draft in drafts]).scalars().all()
        for draft, lead_id in zip(drafts, ids, strict=True):
            draft.id = lead_id
    if links:
        rows = [
            {"lead_id": lead if isinstance(lead, int) else lead.id, "post_id": post_id}
            for lead, post_id in links
        ]
        session.execute(insert(_LEAD_POSTS), rows)
    session.execute(
        update(_POSTS).where(_POSTS.c.id.in_(post_ids)).values(detection_status=DetectionStatus.DETECTED)
    )


def detect_new_posts(
    settings: Settings,
    session_factory: sessionmaker[Session],
    page_size: int = PAGE_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
) -> DetectSummary:
    """Process every NEW post, one transaction per page: a crash loses nothing, a re-run doubles nothing.

    ``on_progress`` is told after each page how many posts are done, of how many were waiting."""
    summary = DetectSummary()
    with session_scope(session_factory) as session:
        detector = load_active(settings, session)
        open_leads = _OpenLeads(session, datetime.now(UTC), settings.city)
        waiting = count_awaiting_detection(session) if on_progress else 0
    done = 0
    after_id = 0
    while True:
        with session_scope(session_factory) as session:
            posts = posts_awaiting_detection(session, limit=page_size, after_id=after_id)
            if not posts:
                break
            _detect_page(settings, session, detector, posts, open_leads, summary)
            after_id = posts[-1].id
        done += len(posts)
        if on_progress:
            # Posts stored while detection runs are judged too: the total grows rather than overflow.
            on_progress(done, max(waiting, done))
        clear_cache()  # a page's tokens serve its four vectorisers; keep memory flat over long runs
    return summary
