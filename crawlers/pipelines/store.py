"""Store posts in batches with the raw bodies behind them, masked; posts already stored are skipped,
so a re-crawl adds nothing (no post, no body) — except that a stored post seen again is *refreshed*
when its engagement counts grew (discovery re-reads a comment thread whose post shows more replies;
a board re-reads a thread listing more replies) or the run that last wrote it did not close clean:
it gets the larger counts and this run as its ``crawl_run_id``. Counts only grow here, since a
response that lacks a count field reads as 0. A post's ``crawl_run_id`` is so the last run that
wrote it, and a board thread is settled only when that run closed clean (crawlers/incremental.py):
a run killed after it raised a thread's count, before the thread's new floors were stored, leaves
the thread unsettled, and it is read again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from sqlalchemy.orm import Session

from crawlers.incremental import item_mark
from crawlers.items import PostItem, RawBody
from storage.body_masking import handle_replacements, mask_body
from storage.db import session_factory_for, session_scope
from storage.personal_data import content_hash
from storage.queries import (
    COUNT_COLUMNS,
    compress_body,
    insert_posts,
    insert_raw_responses,
    raw_response_ids,
    refresh_posts,
    stored_posts_of,
)

RUN_ID_STAT = "weisu/crawl_run_id"
HIGH_WATER_STAT = "weisu/high_water_mark"
#: Signal: commit the batch now (a distributed worker sends it before it releases leases, so that no
#: lease goes while the posts of its response are still only in this process's memory).
flush_posts = object()

Pending = tuple[dict[str, Any], RawBody | None]


class StorePipeline:
    def __init__(
        self, crawler: Crawler, database_url: str, author_hash_key: str, batch_size: int = 100
    ) -> None:
        self.crawler = crawler
        self.database_url = database_url
        self.author_hash_key = author_hash_key
        self.batch_size = batch_size
        self.batch: list[Pending] = []
        self.newest: tuple[str, str] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        settings = crawler.settings.get("WEISU_SETTINGS")
        if settings is None:
            raise NotConfigured("WEISU_SETTINGS is not set")
        pipeline = cls(
            crawler,
            settings.database_url,
            settings.author_hash_key,
            crawler.settings.getint("WEISU_STORE_BATCH", 100),
        )
        crawler.signals.connect(pipeline.flush, signal=flush_posts)
        return pipeline

    def process_item(self, item: Any) -> PostItem:
        evidence: RawBody | None = item.evidence
        row = item.row()
        row["content_hash"] = content_hash(item.text)
        row["fetched_at"] = evidence.fetched_at if evidence is not None else datetime.now(UTC)
        self.batch.append((row, evidence))
        mark = item_mark(item)
        if mark is not None and (self.newest is None or mark > self.newest):
            self.newest = mark
            self.stats.set_value(HIGH_WATER_STAT, " ".join(mark))
        if len(self.batch) >= self.batch_size:
            self.flush()
        return item

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    def flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        run_id = self.stats.get_value(RUN_ID_STAT)
        try:
            with session_scope(session_factory_for(self.database_url)) as session:
                fresh, refreshed = _not_yet_stored(session, batch, run_id)
                self.stats.inc_value("weisu/posts_refreshed", refresh_posts(session, refreshed))
                body_ids = self._store_bodies(session, fresh)
                rows = []
                for row, evidence in fresh:
                    row["crawl_run_id"] = run_id
                    row["raw_response_id"] = body_ids.get(evidence.sha256) if evidence is not None else None
                    rows.append(row)
                stored = insert_posts(session, rows)
        except Exception:
            # Kept for the next flush, not dropped: a distributed worker releases the leases of these
            # posts' requests after a flush that succeeds, and that may be the next (empty) one.
            self.batch = batch + self.batch
            raise
        self.stats.inc_value("weisu/posts_stored", stored)
        self.stats.inc_value("weisu/posts_seen_before", len(batch) - stored)

    def _store_bodies(self, session: Session, fresh: list[Pending]) -> dict[str, int]:
        """Bodies are masked and compressed only when their SHA-256 (of the body as served) is new: a
        listing behind twenty posts once. The SHA-256 kept is the original's, so the original can be
        proven; the bytes kept are masked like the posts, handles replaced by their author keys."""
        known = raw_response_ids(session, (body.sha256 for _, body in fresh if body is not None))
        new: dict[str, tuple[str, RawBody]] = {}
        for row, body in fresh:
            if body is not None and body.sha256 not in known:
                new.setdefault(body.sha256, (row["platform_id"], body))
        rows = [
            {
                "platform_id": platform_id,
                "url": body.url[:2000],
                "status": body.status,
                "content_type": body.content_type,
                "fetched_at": body.fetched_at,
                "sha256": body.sha256,
                "size": body.size,
                "body_gz": compress_body(self.masked(platform_id, body)),
            }
            for platform_id, body in new.values()
        ]
        if rows:
            known |= insert_raw_responses(session, rows)
            self.stats.inc_value("weisu/raw_responses_stored", len(rows))
        return known

    def masked(self, platform_id: str, body: RawBody) -> bytes:
        replacements = handle_replacements(self.author_hash_key, platform_id, body.handles)
        return mask_body(body.body, body.content_type, replacements)

    def close_spider(self) -> None:
        self.flush()


def _not_yet_stored(
    session: Session, batch: list[Pending], run_id: int | None
) -> tuple[list[Pending], list[dict[str, Any]]]:
    """(the batch without posts already in the database or earlier in the batch (first one wins),
    the refreshes of stored posts: each count the larger of the two, and this run)."""
    by_platform: dict[str, list[str]] = {}
    for row, _ in batch:
        by_platform.setdefault(row["platform_id"], []).append(row["external_id"])
    stored = {
        (platform_id, external_id): post
        for platform_id, ids in by_platform.items()
        for external_id, post in stored_posts_of(session, platform_id, ids).items()
    }
    taken: set[tuple[str, str]] = set()
    fresh: list[Pending] = []
    refreshed: dict[int, dict[str, Any]] = {}
    for row, evidence in batch:
        key = (row["platform_id"], row["external_id"])
        if key not in stored:
            if key not in taken:
                taken.add(key)
                fresh.append((row, evidence))
            continue
        post = stored[key]
        before = dict(zip(COUNT_COLUMNS, post.counts, strict=True))
        counts = refreshed.get(post.id, before)
        seen = {name: max(counts[name], row.get(name) or 0) for name in COUNT_COLUMNS}
        unsettled = not post.settled and post.crawl_run_id != run_id
        if seen != before or unsettled:
            refreshed[post.id] = {"id": post.id, **seen, "crawl_run_id": run_id}
    return fresh, list(refreshed.values())
