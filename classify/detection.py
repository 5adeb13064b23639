"""`weisu detect`: classify new posts; relevant ones become leads or join an open lead, idempotently,
on one process or on many side by side (pages claimed with SKIP LOCKED, merging serialised in post order)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from classify.jurisdiction import decide as decide_jurisdiction
from classify.leads import Draft, anchors, join_lead, new_lead
from classify.merging import LeadIndex, shingles
from classify.model import Detector, Prediction, load_active
from classify.places import Place, extract_place
from classify.text import clear_cache
from classify.urgency import Urgency, assess
from settings import CitySettings, Settings
from storage.db import session_scope
from storage.models import Classification, Lead, LeadPost, Post, title_and_text
from storage.queries import (
    PostToJudge,
    PostToMerge,
    claim_posts_for_detection,
    count_awaiting_detection,
    insert_leads,
    last_merge_number,
    lock_merging,
    posts_awaiting_merge,
)
from storage.vocabulary import LIVE_STATES, DetectionStatus

PAGE_SIZE = 500
#: When an urgent rule fires, a post needs only this relevance to become a lead: a gas smell or a
#: missing manhole cover told in one colloquial line must not be lost to the model's doubt.
URGENT_RELEVANCE_FLOOR = 0.1
#: Only leads seen this recently are merge candidates: an old problem reported again is a new lead.
MERGE_WINDOW = timedelta(days=30)
#: A worker that runs for days rebuilds its open-lead index this often: leads leave the merge window,
#: analysts close leads, and the index would otherwise only grow.
INDEX_MAX_AGE = timedelta(days=1)
# The tables themselves, for set-wise Core statements (the ORM would flush object by object).
_CLASSIFICATIONS, _LEAD_POSTS, _POSTS = (
    cast(Table, model.__table__) for model in (Classification, LeadPost, Post)
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


class _OpenLeads:
    """The open leads of the merge window in a LeadIndex; loaded once per run, extended as leads are made
    here, and refreshed with the evidence other detection workers stored (inside the merge lock).

    Evidence is read by merge number (lead_posts.merge_number): a refresh asks only for the merges after
    the last one indexed here, so its cost follows what others merged since, not the window's size."""

    def __init__(self, session: Session, now: datetime, city: CitySettings) -> None:
        self.index = LeadIndex()
        self.city = city
        self.loaded_at = now
        # Per lead number: its id, or its draft until the page is stored.
        self.handles: list[int | Draft] = []
        self._numbers: dict[int, int] = {}  # lead id, or id() of a draft -> lead number
        self._drafts: list[int] = []  # the numbers of this page's drafts, made stored leads by settle
        # Read before the evidence, and the evidence read only up to it: a merge committed meanwhile is
        # left whole to the first refresh, never indexed twice.
        self.merged_through = last_merge_number(session)
        self._load(session, *self._open(now), LeadPost.merge_number <= self.merged_through)

    @staticmethod
    def _open(now: datetime) -> tuple[ColumnElement[bool], ...]:
        return Lead.state.in_(LIVE_STATES), Lead.last_seen_at >= now - MERGE_WINDOW

    def _load(self, session: Session, *conditions: ColumnElement[bool]) -> None:
        # In post order, the order merging indexed them in: the index (its boilerplate shingles, its
        # tie-breaks) then holds the same whether one worker merged the posts or several.
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
            .where(*conditions)
            .order_by(Post.id)
        )
        for lead_id, district, category, landmark, reason, title, text in rows:
            evidence = title_and_text(title, text)
            place = extract_place(evidence, self.city)
            self.add(
                lead_id, shingles(evidence), place, district, category, anchors(district, landmark, reason)
            )

    def refresh(self, session: Session) -> int:
        """Index the evidence other workers stored since: call it holding the merge lock (nobody else
        merges meanwhile). Returns the number the next merge stores its evidence under."""
        latest = last_merge_number(session)
        if latest > self.merged_through:
            since = LeadPost.merge_number.between(self.merged_through + 1, latest)
            self._load(session, *self._open(self.loaded_at), since)
            self.merged_through = latest
        return latest + 1

    def add(
        self,
        lead: int | Draft,
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
            if not isinstance(lead, int):
                self._drafts.append(number)

    def match(
        self,
        grams: frozenset[str],
        place: Place,
        category: str | None,
        threshold: float,
        hazards: frozenset[str] = frozenset(),
    ) -> int | Draft | None:
        number = self.index.match(grams, frozenset(place.districts), category, threshold, hazards)
        return None if number is None else self.handles[number]

    def settle(self, merge_number: int, stored: bool) -> None:
        """After a page's drafts are inserted, keep their ids; ``stored``: evidence went in as merge
        ``merge_number`` (else the number is unused, and the next merge, here or elsewhere, takes it)."""
        if stored:
            self.merged_through = merge_number
        for number in self._drafts:
            lead = self.handles[number]
            assert isinstance(lead, Draft) and lead.id is not None
            del self._numbers[id(lead)]
            self.handles[number] = lead.id
            self._numbers[lead.id] = number
        self._drafts.clear()


def local_entry_points(settings: Settings) -> set[tuple[str, str | None]]:
    """(platform, entry-point label) pairs configured ``local``: they list only our city's content."""
    return {
        (key, entry.label)
        for key, platform in settings.platforms.items()
        for entry in platform.entry_points
        if entry.local
    }


def _classify_page(
    settings: Settings, session: Session, detector: Detector, posts: list[PostToJudge], summary: DetectSummary
) -> dict[int, Place]:
    """Judge a claimed page: its classifications, and each post's status (CLASSIFIED when it is to
    become a lead or evidence, else DETECTED). The model runs here, on as many workers as there are.

    Returns the place of each post to merge, so that merging in this process need not find it again."""
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
    # What a crashed run may already have written for this page (its classifications are kept).
    classified = set(
        session.scalars(
            select(Classification.post_id).where(
                Classification.post_id.in_(ids), Classification.model_version == detector.version
            )
        )
    )
    new_classifications: list[dict[str, Any]] = []
    to_merge: list[int] = []
    places: dict[int, Place] = {}
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
        if post.id not in classified:
            new_classifications.append(
                {
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
                    "request_type": prediction.request_type,
                    "request_type_probability": prediction.request_type_probability,
                }
            )
            summary.classified += 1
        if is_lead and where.elsewhere:
            summary.dropped_elsewhere += 1
        elif is_lead:
            to_merge.append(post.id)
            places[post.id] = place
    if new_classifications:
        session.execute(insert(_CLASSIFICATIONS), new_classifications)
    merge = set(to_merge)
    for status, chosen in (
        (DetectionStatus.CLASSIFIED, to_merge),
        (DetectionStatus.DETECTED, [i for i in ids if i not in merge]),
    ):
        if chosen:
            session.execute(update(_POSTS).where(_POSTS.c.id.in_(chosen)).values(detection_status=status))
    return places


def _judged(classification: PostToMerge) -> tuple[Prediction, Urgency]:
    """What the classifying worker judged, as merging needs it (no model here)."""
    prediction = Prediction(
        relevance=classification.relevance,
        is_lead=True,
        category=classification.category,
        category_probability=classification.category_probability,
        best_category=classification.category,
        top_terms=classification.top_terms,
        request_type=classification.request_type,
        request_type_probability=classification.request_type_probability,
    )
    return prediction, Urgency(classification.urgent, classification.urgency_reason)


def _merge_page(
    settings: Settings,
    session: Session,
    open_leads: _OpenLeads,
    summary: DetectSummary,
    limit: int,
    places: dict[int, Place] | None = None,
) -> int:
    """Join up to ``limit`` classified posts to open leads or make new ones, in post order, holding the
    merge lock: one worker at a time, each re-reading what the others merged. Returns how many.

    ``places``: posts' places found while classifying them (extract_place of the same text and city);
    a post another worker classified has none there and is placed here."""
    if not posts_awaiting_merge(session, 1):
        return 0  # nothing ready (or another worker merging it): no lock, no refresh
    lock_merging(session)
    merge_number = open_leads.refresh(session)
    page = posts_awaiting_merge(session, limit)
    if not page:
        return 0
    ids = [post.id for post in page]
    # Evidence a crashed run stored already (its lead was committed, the post's status was not).
    evidence = set(session.scalars(select(LeadPost.post_id).where(LeadPost.post_id.in_(ids))))
    links: list[tuple[int | Draft, int]] = []  # (lead, post id)
    drafts: list[Draft] = []
    joins: list[tuple[int, PostToMerge, Prediction, Urgency]] = []
    threshold = settings.classify.merge_similarity
    for post in page:
        if post.id in evidence:
            continue  # never count a post twice
        prediction, urgency = _judged(post)
        text = title_and_text(post.title, post.text)
        place = places.get(post.id) if places else None
        if place is None:
            place = extract_place(text, settings.city)
        grams = shingles(text)
        hazards = anchors(place.district, place.landmark, urgency.reason)
        match = open_leads.match(grams, place, prediction.category, threshold, hazards)
        if match is None:
            draft = new_lead(post, prediction, place, urgency, post.model_version)
            drafts.append(draft)
            open_leads.add(draft, grams, place, draft.district, draft.category, hazards)
            links.append((draft, post.id))
            summary.leads_created += 1
            summary.urgent += int(urgency.urgent)
            continue
        if isinstance(match, Draft):
            join_lead(match, post, prediction, urgency)
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
            join_lead(stored[lead_id], post, prediction, urgency)
    _store_page(session, ids, drafts, links, merge_number)
    open_leads.settle(merge_number, stored=bool(links))
    return len(page)


def _store_page(
    session: Session,
    post_ids: list[int],
    drafts: list[Draft],
    links: list[tuple[int | Draft, int]],
    merge_number: int,
) -> None:
    """A merged page's writes as a few set-wise statements (Core, not the ORM's per-object unit of
    work): new leads as multi-row INSERT … RETURNING id (storage.queries.insert_leads), evidence as
    executemany, the posts' status as one UPDATE. Joined leads that existed before are the ORM's,
    flushed with the commit."""
    ids = insert_leads(session, [draft.row() for draft in drafts])
    for draft, lead_id in zip(drafts, ids, strict=True):
        draft.id = lead_id
    if links:
        rows = [
            {
                "lead_id": lead if isinstance(lead, int) else lead.id,
                "post_id": post_id,
                "merge_number": merge_number,
            }
            for lead, post_id in links
        ]
        session.execute(insert(_LEAD_POSTS), rows)
    session.execute(
        update(_POSTS).where(_POSTS.c.id.in_(post_ids)).values(detection_status=DetectionStatus.DETECTED)
    )


class _Run:
    """One detection process: its open-lead index and its tally, kept between pages."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session], page_size: int) -> None:
        self.settings, self.factory, self.page_size = settings, session_factory, page_size
        self.summary = DetectSummary()
        with session_scope(session_factory) as session:
            load_active(settings, session)  # no model: stop before anything is claimed
            self.open_leads = _OpenLeads(session, datetime.now(UTC), settings.city)

    def step(self) -> tuple[int, int]:
        """Classify one claimed page, then merge what is ready: (posts classified, posts merged).

        Each is its own transaction: a worker killed while classifying leaves its page NEW for another
        (its row locks go with its connection); killed while merging, the page stays CLASSIFIED."""
        with session_scope(self.factory) as session:
            # Per page: a cached lookup, so that a worker picks up a model activated while it runs.
            detector = load_active(self.settings, session)
            now = datetime.now(UTC)
            if now - self.open_leads.loaded_at > INDEX_MAX_AGE:
                self.open_leads = _OpenLeads(session, now, self.settings.city)
            posts = claim_posts_for_detection(session, self.page_size)
            places = _classify_page(self.settings, session, detector, posts, self.summary) if posts else {}
        merged = 0
        while True:
            with session_scope(self.factory) as session:
                count = _merge_page(
                    self.settings, session, self.open_leads, self.summary, self.page_size, places
                )
            merged += count
            if count < self.page_size:
                # A page's normalised texts and tokens serve its vectorisers and then its merging (the
                # shingles start from the normalised text); cleared per page to keep memory flat.
                clear_cache()
                return len(posts), merged


def detect_new_posts(
    settings: Settings,
    session_factory: sessionmaker[Session],
    page_size: int = PAGE_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
) -> DetectSummary:
    """Process every NEW post, one transaction per page: a crash loses nothing, a re-run doubles nothing.
    Safe beside detection workers: each page is claimed, so no post is judged twice.

    ``on_progress`` is told after each page how many posts are done, of how many were waiting."""
    run = _Run(settings, session_factory, page_size)
    with session_scope(session_factory) as session:
        waiting = count_awaiting_detection(session) if on_progress else 0
    done = 0
    while taken := run.step()[0]:
        done += taken
        if on_progress:
            # Posts stored while detection runs are judged too: the total grows rather than overflow.
            on_progress(done, max(waiting, done))
    return run.summary


def run_worker(
    settings: Settings,
    session_factory: sessionmaker[Session],
    page_size: int | None = None,
    idle_exit: float | None = None,
    stop: threading.Event | None = None,
    poll_seconds: float = 1.0,
    on_page: Callable[[DetectSummary], None] | None = None,
) -> DetectSummary:
    """A detection worker: claim and judge pages as posts arrive, beside any number of other workers,
    until ``stop`` is set or, with ``idle_exit``, nothing has arrived for that many seconds."""
    stop = stop or threading.Event()
    run = _Run(settings, session_factory, page_size or PAGE_SIZE)
    idle_since = time.monotonic()
    while not stop.is_set():
        taken, merged = run.step()
        if taken or merged:
            idle_since = time.monotonic()
            if on_page:
                on_page(run.summary)
            continue
        if idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
            break
        stop.wait(poll_seconds)
    return run.summary
