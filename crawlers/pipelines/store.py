"""Store posts in batches; (platform, external id) already stored are skipped, so re-crawls add nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawlers.items import PostItem
from crawlers.text import content_hash
from storage.db import session_factory_for, session_scope
from storage.queries import insert_posts

RUN_ID_STAT = "weisu/crawl_run_id"
HIGH_WATER_STAT = "weisu/high_water_mark"


class StorePipeline:
    def __init__(self, crawler: Crawler, database_url: str, batch_size: int = 100) -> None:
        self.crawler = crawler
        self.database_url = database_url
        self.batch_size = batch_size
        self.batch: list[dict[str, Any]] = []
        self.newest: tuple[str, str] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        settings = crawler.settings.get("WEISU_SETTINGS")
        if settings is None:
            raise NotConfigured("WEISU_SETTINGS is not set")
        return cls(crawler, settings.database_url, crawler.settings.getint("WEISU_STORE_BATCH", 100))

    def process_item(self, item: Any) -> PostItem:
        row = item.row() | {
            "content_hash": content_hash(item.text),
            "fetched_at": datetime.now(UTC),
            "crawl_run_id": self.stats.get_value(RUN_ID_STAT),
        }
        self.batch.append(row)
        if item.published_at is not None:
            mark = (item.published_at.astimezone(UTC).isoformat(), item.external_id)
            if self.newest is None or mark > self.newest:
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
        with session_scope(session_factory_for(self.database_url)) as session:
            stored = insert_posts(session, batch)
        self.stats.inc_value("weisu/posts_stored", stored)
        self.stats.inc_value("weisu/posts_seen_before", len(batch) - stored)

    def close_spider(self) -> None:
        self.flush()
