"""The few query functions every stage shares: platform rows, idempotent post inserts, raw evidence
bodies, crawl runs and crawl gaps, followed comment threads, stage counts."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import (
    Alert,
    Classification,
    CommentThread,
    CrawlGap,
    CrawlRun,
    Lead,
    LeadPost,
    Platform,
    Post,
    RawResponse,
    Ticket,
)
from storage.vocabulary import (
    ACCEPTED_TICKET_STATES,
    LIVE_STATES,
    CrawlRunStatus,
    DetectionStatus,
    GapKind,
    GapState,
    Priority,
    RequestType,
)


def _insert_ignoring_conflicts(
    session: Session, model: Any, index_elements: Sequence[str], returning: Sequence[str] = ()
) -> Any:
    """INSERT … ON CONFLICT DO NOTHING on ``model`` (RETURNING those columns of a table, if named).

    Statements are immutable: each is built once per dialect, not again for every batch of a crawl."""
    dialect = session.get_bind().dialect.name
    return _conflict_free_insert(dialect, model, tuple(index_elements), tuple(returning))


@cache
def _conflict_free_insert(
    dialect: str, model: Any, index_elements: tuple[str, ...], returning: tuple[str, ...]
) -> Any:
    statement = _on_conflict_do_nothing(dialect, model, index_elements)
    return statement.returning(*(model.c[name] for name in returning)) if returning else statement


def _on_conflict_do_nothing(dialect: str, model: Any, index_elements: tuple[str, ...]) -> Any:
    if dialect == "postgresql":
        # Imported here: the postgresql package loads every driver's dialect (75 ms at crawl start-up).
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing(index_elements=list(index_elements))
    if dialect == "sqlite":
        return sqlite_insert(model).on_conflict_do_nothing(index_elements=list(index_elements))
    raise NotImplementedError(f"unsupported database dialect: {dialect}")


def sync_platforms(session: Session, platforms: Mapping[str, tuple[str, str, bool]]) -> None:
    """Make the platforms table mirror config.yaml: {id: (name, kind, enabled)}; rows are never deleted."""
    existing = {p.id: p for p in session.scalars(select(Platform).where(Platform.id.in_(list(platforms))))}
    missing = [
        {"id": key, "name": name, "kind": kind, "enabled": enabled}
        for key, (name, kind, enabled) in platforms.items()
        if key not in existing
    ]
    if missing:
        # Crawl workers started together on a new database all find the rows missing: the first
        # insert wins and the others insert nothing (a plain INSERT would fail them on the key).
        session.execute(_insert_ignoring_conflicts(session, Platform, ["id"]).values(missing))
    for key, row in existing.items():
        row.name, row.kind, row.enabled = platforms[key]
    session.flush()


def paused_platform_ids(session: Session) -> set[str]:
    """Platforms an admin has paused: scheduled and whole sweeps skip them."""
    return set(session.scalars(select(Platform.id).where(Platform.paused.is_(True))))


def set_platform_paused(
    session: Session, platform_id: str, *, paused: bool, actor: str, reason: str | None = None
) -> Platform:
    """Pause (with a reason) or resume one platform; raises KeyError for a platform never synced."""
    platform = session.get(Platform, platform_id)
    if platform is None:
        raise KeyError(platform_id)
    platform.paused = paused
    platform.paused_reason = (reason or "")[:200] or None if paused else None
    platform.paused_by = actor if paused else None
    session.flush()
    return platform


def insert_posts(session: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert posts, skipping any (platform_id, external_id) already stored; return how many were new."""
    batch = [dict(row) for row in rows]
    if not batch:
        return 0
    # On the table, not the mapped class: the ORM's bulk-insert path adds ~0.1 ms of bookkeeping per
    # row, and these rows need none of it (column defaults are applied either way).
    table = Post.__table__
    statement = _insert_ignoring_conflicts(session, table, ["platform_id", "external_id"], returning=["id"])
    result = session.execute(statement, batch)
    return len(result.all())


#: A post's engagement counts, in this order: what a re-crawl may raise on a stored post.
COUNT_COLUMNS = ("likes", "replies", "reposts")


class StoredPost(NamedTuple):
    """What the store needs of a post already stored: its row, its counts, and who last wrote it."""

    id: int
    counts: tuple[int, int, int]
    #: The run that stored or last refreshed it (None: stored outside any run).
    crawl_run_id: int | None
    #: Whether that run closed clean (ok), or there was none.
    settled: bool


def stored_posts_of(session: Session, platform_id: str, external_ids: Iterable[str]) -> dict[str, StoredPost]:
    """{external id: StoredPost} for the ids the platform already has."""
    ids = list(set(external_ids))
    if not ids:
        return {}
    rows = session.execute(_STORED_POSTS, {"platform_id": platform_id, "external_ids": ids})
    return {
        external_id: StoredPost(row_id, (likes, replies, reposts), run_id, bool(settled))
        for external_id, row_id, likes, replies, reposts, run_id, settled in rows
    }


# The crawl's per-batch lookups are built once, with their values as bound parameters: building the
# statement and its cache key again for every batch (each id coerced into the expression) cost more
# than running it. The ids are an expanding IN parameter: one statement for any number of them.
_STORED_POSTS = (
    select(
        Post.external_id,
        Post.id,
        Post.likes,
        Post.replies,
        Post.reposts,
        Post.crawl_run_id,
        or_(Post.crawl_run_id.is_(None), CrawlRun.status == CrawlRunStatus.OK),
    )
    .outerjoin(CrawlRun, CrawlRun.id == Post.crawl_run_id)
    .where(
        Post.platform_id == bindparam("platform_id"),
        Post.external_id.in_(bindparam("external_ids", expanding=True)),
    )
)
_RAW_RESPONSE_IDS = select(RawResponse.sha256, RawResponse.id).where(
    RawResponse.sha256.in_(bindparam("sha256s", expanding=True))
)


def refresh_posts(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Set stored posts' counts and run ({"id", "likes", "replies", "reposts", "crawl_run_id"} each);
    return how many rows. A post's text, author and evidence stay as first stored."""
    if rows:
        session.execute(update(Post), [dict(row) for row in rows])
    return len(rows)


class StoredThread(NamedTuple):
    """A board thread as stored: whether a clean run stored it, and its reply count then or since."""

    settled: bool
    replies: int


def stored_threads(
    session: Session, platform_id: str, external_ids: Iterable[str]
) -> dict[str, StoredThread]:
    """Which of these external ids the platform has stored: {id: (settled, replies)}.

    Settled: a clean run (status ok, finished with no request lost) stored it, or it was stored
    outside any run. crawlers/incremental.py says why boards stop paging only at such posts.
    """
    return {
        external_id: StoredThread(post.settled, post.counts[1])
        for external_id, post in stored_posts_of(session, platform_id, external_ids).items()
    }


def raw_response_ids(session: Session, sha256s: Iterable[str]) -> dict[str, int]:
    """{sha256: raw_responses.id} for the bodies already stored."""
    digests = list(set(sha256s))
    if not digests:
        return {}
    return {digest: row_id for digest, row_id in session.execute(_RAW_RESPONSE_IDS, {"sha256s": digests})}


def insert_raw_responses(session: Session, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert raw bodies whose sha256 is not stored yet (a concurrent writer's copy wins); return
    {sha256: id} for every row given."""
    if not rows:
        return {}
    table = RawResponse.__table__  # see insert_posts
    statement = _insert_ignoring_conflicts(session, table, ["sha256"], returning=["sha256", "id"])
    ids = {digest: row_id for digest, row_id in session.execute(statement, [dict(row) for row in rows])}
    # Rows another writer inserted first return nothing here: their ids are read.
    missing = [row["sha256"] for row in rows if row["sha256"] not in ids]
    return ids | raw_response_ids(session, missing)


def compress_body(body: bytes) -> bytes:
    """gzip with a fixed timestamp, so one body always compresses to the same bytes."""
    return gzip.compress(body, compresslevel=6, mtime=0)


def decompressed(raw: RawResponse) -> bytes:
    """The body kept: as the platform served it (up to the size limit), personal data masked."""
    return gzip.decompress(raw.body_gz)


def raw_response_for_post(session: Session, post_id: int) -> RawResponse | None:
    """The raw response a post was parsed from, or None (unknown post, or stored before evidence)."""
    query = select(RawResponse).join(Post, Post.raw_response_id == RawResponse.id).where(Post.id == post_id)
    return session.scalars(query).first()


def latest_runs(session: Session) -> dict[str, CrawlRun]:
    """The newest crawl run of every platform that has one: {platform_id: run}."""
    newest = select(func.max(CrawlRun.id)).group_by(CrawlRun.platform_id)
    runs = session.scalars(select(CrawlRun).where(CrawlRun.id.in_(newest)))
    return {run.platform_id: run for run in runs}


def previous_runs(session: Session, platform_id: str, before_id: int, limit: int) -> list[CrawlRun]:
    """The platform's finished runs before ``before_id``, newest first (interrupted runs counted nothing)."""
    query = (
        select(CrawlRun)
        .where(
            CrawlRun.platform_id == platform_id,
            CrawlRun.id < before_id,
            CrawlRun.finished_at.is_not(None),
            CrawlRun.status != CrawlRunStatus.INTERRUPTED,
        )
        .order_by(CrawlRun.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


#: The bound parameter naming the run finish_run updates (not a column name: those are the values).
RUN_KEY = "finished_run_id"
_RUNS = cast(Table, CrawlRun.__table__)
_FINISH_RUN = update(_RUNS).where(_RUNS.c.id == bindparam(RUN_KEY))


def finish_run(
    session: Session,
    run_id: int,
    platform_id: str,
    values: Mapping[str, Any],
    access: tuple[str, str | None] | None = None,
    mark: str | None = None,
) -> None:
    """Close a crawl run of ``platform_id``: its row gets ``values``; the platform the ``access``
    (status, reason) met, if any, and the high-water ``mark`` if it is later than the stored one
    (None: the mark stays).

    On the tables, not the mapped classes: the ORM's UPDATE would first try to find the updated
    objects in the session to synchronise them (a run closes 51 times a sweep, with none loaded)."""
    platforms = cast(Table, Platform.__table__)
    # The columns set come from the parameters' keys (a statement compiled once per set of keys).
    session.execute(_FINISH_RUN, {**values, RUN_KEY: run_id})
    here = platforms.c.id == platform_id
    if access is not None:
        session.execute(
            update(platforms).where(here).values(access_status=access[0], access_reason=access[1])
        )
    if mark is not None:
        move_high_water_mark(session, platform_id, mark)


def move_high_water_mark(session: Session, platform_id: str, mark: str) -> None:
    """Set the platform's high-water mark to ``mark`` if it is later than the stored one."""
    platforms = cast(Table, Platform.__table__)
    here = platforms.c.id == platform_id
    # Compared here, not in SQL, where PostgreSQL would order the strings by its collation.
    stored = session.execute(select(platforms.c.high_water_mark).where(here)).scalar_one_or_none()
    if (stored or "") < mark:
        session.execute(update(platforms).where(here).values(high_water_mark=mark))


def open_gaps(session: Session, platform_ids: Sequence[str]) -> list[CrawlGap]:
    """The open crawl gaps of these platforms, oldest first."""
    query = (
        select(CrawlGap)
        .where(CrawlGap.state == GapState.OPEN, CrawlGap.platform_id.in_(list(platform_ids)))
        .order_by(CrawlGap.id)
    )
    return list(session.scalars(query))


def gap_expired(gap: CrawlGap, max_attempts: int, max_age: timedelta, now: datetime) -> bool:
    """Whether an open gap is given up: tried ``max_attempts`` times, or first failed ``max_age`` ago."""
    return gap.attempts >= max_attempts or now - gap.first_failed_at >= max_age


def close_gap(session: Session, gap_id: int, state: GapState, now: datetime) -> CrawlGap | None:
    """Mark a gap recovered or aged out (an unknown id: None)."""
    gap = session.get(CrawlGap, gap_id)
    if gap is not None:
        gap.state, gap.closed_at = state, now
        session.flush()
    return gap


def record_gap_failure(
    session: Session,
    *,
    platform_id: str,
    fingerprint: str,
    kind: GapKind,
    url: str,
    method: str,
    body: str | None,
    meta: Mapping[str, Any],
    reason: str,
    now: datetime,
    gap_id: int | None = None,
) -> CrawlGap:
    """Record one more failed try of a request: a new gap, or one more attempt of the gap it was
    fetching again (``gap_id``) or of the same request (platform and fingerprint). A recovered gap
    that fails again is opened anew, counted from this failure; an aged-out one stays given up (it
    was reported once; trying it again each run would only report it again)."""
    gap = session.get(CrawlGap, gap_id) if gap_id is not None else None
    if gap is None:
        values = {
            "platform_id": platform_id, "fingerprint": fingerprint, "kind": kind, "url": url,
            "method": method, "body": body, "meta": dict(meta), "state": GapState.OPEN,
            "first_failed_at": now, "last_tried_at": now, "attempts": 0,
        }  # fmt: skip
        # A concurrent crawl of the platform may record the same request: one row, never two.
        session.execute(_insert_ignoring_conflicts(session, CrawlGap, ["platform_id", "fingerprint"]), values)
        query = select(CrawlGap).where(
            CrawlGap.platform_id == platform_id, CrawlGap.fingerprint == fingerprint
        )
        gap = session.scalars(query.with_for_update()).one()
    if gap.state == GapState.RECOVERED:
        gap.state, gap.closed_at, gap.first_failed_at, gap.attempts = GapState.OPEN, None, now, 0
    if gap.state == GapState.OPEN:
        gap.attempts += 1
    gap.last_tried_at = now
    gap.last_reason = reason[:200]
    session.flush()
    return gap


def crawl_gaps(session: Session, platform_id: str | None = None) -> list[CrawlGap]:
    """Every recorded gap (of one platform), in the order they were first recorded."""
    query = select(CrawlGap).order_by(CrawlGap.id)
    if platform_id is not None:
        query = query.where(CrawlGap.platform_id == platform_id)
    return list(session.scalars(query))


def posts_awaiting_detection(session: Session, limit: int = 1000, after_id: int = 0) -> list[Post]:
    """New posts in id order, a page at a time, so detection can resume after a crash."""
    statement = (
        select(Post)
        .where(Post.detection_status == DetectionStatus.NEW, Post.id > after_id)
        .order_by(Post.id)
        .limit(limit)
    )
    return list(session.scalars(statement))


class PostToJudge(NamedTuple):
    """What classifying a post reads of it: a plain row, not an ORM object (a page of 500 posts loaded
    as objects cost more than the inserts that store their classifications)."""

    id: int
    platform_id: str
    external_id: str
    title: str | None
    text: str
    ip_location: str | None
    entry_point: str | None


def claim_posts_for_detection(session: Session, limit: int) -> list[PostToJudge]:
    """The oldest NEW posts no other detection worker holds, row-locked until this transaction ends.

    FOR UPDATE SKIP LOCKED: two workers never take one post, and a killed worker's batch is free again
    as soon as its connection goes. SQLite (one writer at a time) has no row locks and ignores it."""
    statement = (
        select(*(getattr(Post, name) for name in PostToJudge._fields))
        .where(Post.detection_status == DetectionStatus.NEW)
        .order_by(Post.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(map(PostToJudge._make, session.execute(statement)))


#: The PostgreSQL advisory lock of merging (any fixed 64-bit number no other weisu lock uses).
MERGE_LOCK_KEY = 0x5745_4953_554D_4552


def lock_merging(session: Session) -> None:
    """Hold merging to this transaction until it ends (pg_advisory_xact_lock): merging reads the open
    leads and writes new ones, and two workers doing it at once would each make a lead for one incident.
    SQLite takes one writer at a time anyway.

    One key, not one per district or category: what may merge is no partition (a post naming no district
    matches every district, near-identical posts merge across categories, anchors cross both), a page of
    lead posts names nearly every district, and merging in post order, which makes M workers' leads
    one worker's, serialises merging anyway. Only merging waits: classifying runs on every worker."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(MERGE_LOCK_KEY)))


def last_merge_number(session: Session) -> int:
    """The number of the newest merge that stored evidence (0: none yet); one step down an index.

    Merges are numbered under the merge lock (lock_merging), so a worker holding it that has read every
    merge up to this number has read all evidence there is."""
    return session.scalar(select(func.max(LeadPost.merge_number))) or 0


class PostToMerge(NamedTuple):
    """A classified post as merging reads it, with its newest classification's judgement (a plain row)."""

    id: int
    title: str | None
    text: str
    published_at: datetime | None
    fetched_at: datetime
    model_version: str
    relevance: float
    category: str | None
    category_probability: float | None
    top_terms: list[Any]
    request_type: RequestType | None
    request_type_probability: float | None
    urgent: bool
    urgency_reason: str | None


_POST_FIELDS = PostToMerge._fields[:5]  # id, title, text, published_at, fetched_at: the post's own
_JUDGEMENT_FIELDS = tuple(name for name in PostToMerge._fields if name not in _POST_FIELDS)
_FIRST_NEW = select(func.min(Post.id)).where(Post.detection_status == DetectionStatus.NEW).scalar_subquery()
_WAITING_FOR_MERGE = (
    select(*(getattr(Post, name) for name in _POST_FIELDS))
    .where(
        Post.detection_status == DetectionStatus.CLASSIFIED, or_(_FIRST_NEW.is_(None), Post.id < _FIRST_NEW)
    )
    .order_by(Post.id)
    .limit(bindparam("limit"))
)
_JUDGEMENTS = (
    select(Classification.post_id, *(getattr(Classification, name) for name in _JUDGEMENT_FIELDS))
    .where(Classification.post_id.in_(bindparam("post_ids", expanding=True)))
    .order_by(Classification.id)
)


def posts_awaiting_merge(session: Session, limit: int) -> list[PostToMerge]:
    """CLASSIFIED posts with their newest classification, in id order, up to the first post still NEW.

    Merging follows post order, whichever worker classified a post first: a post waits while an earlier
    one is still being classified, so that several workers make exactly the leads one would.

    Two statements, the page's posts and then their classifications by post id: one statement joining
    each post to its newest classification (a correlated max) was planned by PostgreSQL as a hash of
    the whole classifications table per page, seconds a page by the end of a night."""
    posts = session.execute(_WAITING_FOR_MERGE, {"limit": limit}).all()
    if not posts:
        return []
    newest: dict[int, tuple[Any, ...]] = {}
    for post_id, *judgement in session.execute(_JUDGEMENTS, {"post_ids": [post.id for post in posts]}):
        newest[post_id] = tuple(judgement)  # in id order: the newest is the last
    return [PostToMerge(*post, *newest[post.id]) for post in posts if post.id in newest]


def insert_leads(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new leads in as few statements as the dialect allows; their ids, in the order of ``rows``.

    PostgreSQL: SQLAlchemy's multi-row INSERT … RETURNING that keeps parameter order. SQLite: that order
    is given up (SQLAlchemy would issue one INSERT per row to keep it, a third of storing a page's
    leads) and restored by sorting: SQLite inserts the VALUES rows in order, each taking the next rowid
    (one writer holds the database), so the ascending ids are the rows' ids in order."""
    if not rows:
        return []
    table = cast(Table, Lead.__table__)
    if session.get_bind().dialect.name == "sqlite":
        return sorted(session.execute(insert(table).returning(table.c.id), rows).scalars())
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.execute(statement, rows).scalars())


def count_awaiting_detection(session: Session) -> int:
    """How many posts detection has still to judge (a progress bar's total)."""
    statement = select(func.count()).select_from(Post).where(Post.detection_status == DetectionStatus.NEW)
    return session.scalar(statement) or 0


def stage_counts(session: Session) -> dict[str, int]:
    """The figures `make demo` and the dashboard print: posts, leads, urgent leads, tickets."""
    return {
        "posts": session.scalar(select(func.count()).select_from(Post)) or 0,
        "leads": session.scalar(select(func.count()).select_from(Lead).where(Lead.state.in_(LIVE_STATES)))
        or 0,
        "urgent_leads": session.scalar(
            select(func.count())
            .select_from(Lead)
            .where(Lead.state.in_(LIVE_STATES), Lead.priority == Priority.URGENT)
        )
        or 0,
        "tickets": session.scalar(select(func.count()).select_from(Ticket)) or 0,
        "tickets_accepted": session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.state.in_(ACCEPTED_TICKET_STATES))
        )
        or 0,
    }


# --- comment discovery -------------------------------------------------------------------------


def thread_source_posts(
    session: Session, platform_ids: Sequence[str], since: datetime, limit: int = 5000
) -> list[Post]:
    """Top-level posts of ``platform_ids`` stored since ``since``, most engaged first (replies, then
    likes, then newest row): the posts whose comment threads discovery may follow."""
    query = (
        select(Post)
        .where(Post.platform_id.in_(list(platform_ids)), Post.parent_external_id.is_(None))
        .where(Post.fetched_at >= since)
        .order_by((Post.replies + Post.likes).desc(), Post.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def comment_threads(
    session: Session, platform_id: str, thread_keys: Iterable[str]
) -> dict[str, CommentThread]:
    """The followed threads of a comments platform among ``thread_keys``, by key."""
    keys = list(dict.fromkeys(thread_keys))
    found: dict[str, CommentThread] = {}
    for start in range(0, len(keys), 500):  # stays under SQLite's bound-parameter limit
        query = select(CommentThread).where(
            CommentThread.platform_id == platform_id, CommentThread.thread_key.in_(keys[start : start + 500])
        )
        found.update((t.thread_key, t) for t in session.scalars(query))
    return found


def record_thread_read(
    session: Session,
    platform_id: str,
    thread_key: str,
    *,
    source: tuple[str, str] | None,
    replies: int,
    newest_mark: str | None,
    now: datetime,
) -> None:
    """Note that a thread was read in full now: the source's reply count then and the newest comment
    read (an older mark is kept when nothing newer was read).

    On the table, as finish_run: a comment crawl notes each thread as soon as it is read, and the
    ORM's unit of work for one row cost more than the statements."""
    threads = cast(Table, CommentThread.__table__)
    row = session.execute(
        select(threads.c.id, threads.c.newest_mark).where(
            threads.c.platform_id == platform_id, threads.c.thread_key == thread_key
        )
    ).first()
    values: dict[str, Any] = {"last_read_at": now, "replies_at_read": replies}
    if source is not None:
        values["source_platform_id"], values["source_external_id"] = source
    if newest_mark is not None and (row is None or row.newest_mark is None or newest_mark > row.newest_mark):
        values["newest_mark"] = newest_mark
    if row is None:
        values |= {"platform_id": platform_id, "thread_key": thread_key, "first_followed_at": now}
        session.execute(threads.insert().values(**values))
    else:
        session.execute(update(threads).where(threads.c.id == row.id).values(**values))


# --- crawl volume and alerts ----------------------------------------------------------------------


def recent_finished_runs(session: Session, per_platform: int) -> dict[str, list[CrawlRun]]:
    """Every platform's last ``per_platform`` finished runs (interrupted ones counted nothing), newest
    first: {platform_id: runs}. The volume history of the health rules and the platform page.

    One query per platform, each walking the (platform_id, id) index backwards and stopping after
    ``per_platform`` rows, however long the history grows."""
    runs: dict[str, list[CrawlRun]] = {}
    for platform_id in session.scalars(select(Platform.id).order_by(Platform.id)):
        query = (
            select(CrawlRun)
            .where(
                CrawlRun.platform_id == platform_id,
                CrawlRun.finished_at.is_not(None),
                CrawlRun.status != CrawlRunStatus.INTERRUPTED,
            )
            .order_by(CrawlRun.id.desc())
            .limit(per_platform)
        )
        if found := list(session.scalars(query)):
            runs[platform_id] = found
    return runs


def insert_alert(session: Session, values: Mapping[str, Any]) -> int | None:
    """Insert an alert unless its event key is stored (by this or a concurrent pass); its id, or None."""
    statement = _insert_ignoring_conflicts(session, Alert, ["event_key"]).values(**values)
    return session.execute(statement.returning(Alert.id)).scalar_one_or_none()
