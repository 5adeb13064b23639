"""`weisu detect`: classify new posts; relevant ones become leads or join an open lead, idempotently."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from classify.jurisdiction import decide as decide_jurisdiction
from classify.merging import shingles
from classify.model import Detector, Prediction, load_active
from classify.places import Place, extract_place
from classify.text import clear_cache
from classify.urgency import Urgency, assess
from settings import Settings
from storage.db import session_scope
from storage.models import (
    Classification,
    DetectionStatus,
    Lead,
    LeadPost,
    LeadState,
    Post,
    Priority,
)
from storage.queries import posts_awaiting_detection

PAGE_SIZE = 500
#: When an urgent rule fires, a post needs only this relevance to become a lead: a gas smell or a
#: missing manhole cover told in one colloquial line must not be lost to the model's doubt.
URGENT_RELEVANCE_FLOOR = 0.1
SUMMARY_CHARS = 120
OPEN_STATES = (LeadState.NEW, LeadState.CLAIMED, LeadState.VERIFIED, LeadState.PROMOTED)
#: Only leads seen this recently are merge candidates: an old problem reported again is a new lead.
MERGE_WINDOW = timedelta(days=30)
#: Posts (or evidence) with fewer distinct 3-shingles than this never merge: about six characters.
MIN_MERGE_SHINGLES = 6
_FIRST_SENTENCE = re.compile(r"^(.+?[。！？!?\n])")


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


def post_text(post: Post) -> str:
    title = (post.title or "").strip()
    body = (post.text or "").strip()
    return f"{title}。{body}" if title and not body.startswith(title) else body or title


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
    """Open leads' evidence shingles, inverted-indexed; loaded once per run, extended as leads are made."""

    def __init__(self, session: Session, now: datetime) -> None:
        # lead (its id, or the Lead itself until the page is flushed), size, district, category
        self.entries: list[tuple[int | Lead, int, str | None, str | None]] = []
        self.postings: dict[str, list[int]] = defaultdict(list)  # shingle -> entry numbers
        self._last: tuple[str, frozenset[str]] | None = None
        rows = session.execute(
            select(Lead.id, Lead.district, Lead.category, Post.title, Post.text)
            .join(LeadPost, LeadPost.lead_id == Lead.id)
            .join(Post, Post.id == LeadPost.post_id)
            .where(Lead.state.in_(OPEN_STATES), Lead.last_seen_at >= now - MERGE_WINDOW)
        )
        for lead_id, district, category, title, text in rows:
            self.add(lead_id, f"{title or ''}。{text}", district, category)

    def _shingles(self, text: str) -> frozenset[str]:
        """A post is matched, then added: cut its shingles once."""
        if self._last is None or self._last[0] is not text:
            self._last = (text, shingles(text))
        return self._last[1]

    def add(self, lead: int | Lead, text: str, district: str | None, category: str | None) -> None:
        grams = self._shingles(text)
        number = len(self.entries)
        self.entries.append((lead, len(grams), district, category))
        for gram in grams:
            self.postings[gram].append(number)

    def settle(self) -> None:
        """After a page is flushed, keep ids rather than Lead objects of a closed session."""
        self.entries = [
            (lead.id if isinstance(lead, Lead) else lead, size, district, category)
            for lead, size, district, category in self.entries
        ]

    def match(self, text: str, place: Place, category: str | None, threshold: float) -> int | Lead | None:
        """The compatible open lead whose evidence is most similar, at containment ≥ threshold.

        Containment (shared shingles over the smaller set), not Jaccard: the same complaint is a
        one-line title on Weibo and a whole letter on a board, and their Jaccard is tiny."""
        mine = self._shingles(text)
        if len(mine) < MIN_MERGE_SHINGLES:
            return None  # too short to tell a repost from a coincidence
        postings = self.postings
        # One counting pass in C over every matching posting list.
        overlaps = Counter(chain.from_iterable(postings[gram] for gram in mine if gram in postings))
        best, best_score = None, threshold
        for number, overlap in overlaps.items():
            lead_id, size, district, lead_category = self.entries[number]
            smaller = min(len(mine), size)
            if smaller < MIN_MERGE_SHINGLES:
                continue
            score = overlap / smaller
            if score < best_score:
                continue
            if place.district and district and place.district != district:
                continue
            if category and lead_category and category != lead_category:
                continue
            best, best_score = lead_id, score
        return best


def _new_lead(
    settings: Settings, post: Post, prediction: Prediction, place: Place, urgency: Urgency, model: str
) -> Lead:
    now = datetime.now(UTC)
    seen = _utc(post.published_at) or _utc(post.fetched_at) or now
    minutes = settings.review.urgent_sla_minutes if urgency.urgent else settings.review.ordinary_sla_minutes
    return Lead(
        state=LeadState.NEW,
        priority=Priority.URGENT if urgency.urgent else Priority.ORDINARY,
        urgency_reason=urgency.reason,
        category=prediction.category,
        category_probability=prediction.category_probability,
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
        sla_due_at=now + timedelta(minutes=minutes),
    )


def _join_lead(settings: Settings, lead: Lead, post: Post, prediction: Prediction, urgency: Urgency) -> None:
    now = datetime.now(UTC)
    seen = _utc(post.published_at) or _utc(post.fetched_at) or now
    lead.evidence_count += 1
    lead.last_seen_at = max(lead.last_seen_at, seen)
    lead.first_seen_at = min(lead.first_seen_at, seen)
    # Independent reports make the lead more likely real: combine as a noisy-OR.
    lead.score = round(1 - (1 - lead.score) * (1 - prediction.relevance), 4)
    if urgency.urgent and lead.priority != Priority.URGENT:
        lead.priority = Priority.URGENT
        lead.urgency_reason = urgency.reason
        due = now + timedelta(minutes=settings.review.urgent_sla_minutes)
        lead.sla_due_at = min(lead.sla_due_at, due) if lead.sla_due_at else due


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
    texts = [post_text(p) for p in posts]
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
    links: list[tuple[Lead, int]] = []
    new_classifications: list[dict[str, Any]] = []
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
        post.detection_status = DetectionStatus.DETECTED
        if not is_lead:
            continue
        if where.elsewhere:
            summary.dropped_elsewhere += 1
            continue
        if post.id in evidence:
            continue  # already evidence (a crashed run's page committed elsewhere): never count twice
        match = open_leads.match(text, place, prediction.category, config.merge_similarity)
        if match is not None:
            lead = match if isinstance(match, Lead) else session.get(Lead, match)
            assert lead is not None
            _join_lead(settings, lead, post, prediction, urgency)
            summary.leads_updated += 1
        else:
            lead = _new_lead(settings, post, prediction, place, urgency, detector.version)
            session.add(lead)
            summary.leads_created += 1
            summary.urgent += int(urgency.urgent)
        open_leads.add(lead, text, lead.district, lead.category)
        links.append((lead, post.id))
    # One flush per page: classifications as one executemany, new leads in a batch, then evidence.
    if new_classifications:
        session.execute(insert(Classification), new_classifications)
    session.flush()
    session.add_all([LeadPost(lead_id=lead.id, post_id=post_id) for lead, post_id in links])
    session.flush()
    open_leads.settle()


def detect_new_posts(
    settings: Settings, session_factory: sessionmaker[Session], page_size: int = PAGE_SIZE
) -> DetectSummary:
    """Process every NEW post, one transaction per page: a crash loses nothing, a re-run doubles nothing."""
    summary = DetectSummary()
    with session_scope(session_factory) as session:
        detector = load_active(settings, session)
        open_leads = _OpenLeads(session, datetime.now(UTC))
    after_id = 0
    while True:
        with session_scope(session_factory) as session:
            posts = posts_awaiting_detection(session, limit=page_size, after_id=after_id)
            if not posts:
                break
            _detect_page(settings, session, detector, posts, open_leads, summary)
            after_id = posts[-1].id
        clear_cache()  # a page's tokens serve its four vectorisers; keep memory flat over long runs
    return summary
