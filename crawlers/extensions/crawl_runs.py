"""Record one crawl_runs row per platform per run (counts, health, layout-change flag), hand the spider
what was seen, move the high-water mark."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from sqlalchemy import select

from crawlers.extensions.health import RunFigures, dropped_reasons, layout_change, responses_by_status
from crawlers.incremental import seen_content
from crawlers.pipelines.store import HIGH_WATER_STAT, RUN_ID_STAT
from crawlers.spiders.base import PlatformSpider
from storage.db import session_factory_for, session_scope
from storage.models import CrawlRun, Platform
from storage.queries import previous_runs, sync_platforms

ERROR_STATS = ("weisu/malformed_pages", "log_count/ERROR", "httperror/response_ignored_count")


def run_status(reason: str, items: int, errors: int) -> str:
    """ok: finished cleanly; partial: finished with errors but found posts; failed: anything else."""
    if reason == "finished" and errors == 0:
        return "ok"
    if reason == "finished" and items > 0:
        return "partial"
    return "failed"


class CrawlRunRecorder:
    def __init__(self, crawler: Crawler, settings: Any, platform_id: str) -> None:
        self.crawler = crawler
        self.settings = settings
        self.platform_id = platform_id
        self.run_id: int | None = None
        self.opened_at = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlRunRecorder:
        settings = crawler.settings.get("WEISU_SETTINGS")
        platform_id = crawler.settings.get("WEISU_PLATFORM")
        if settings is None or not platform_id:
            raise NotConfigured("WEISU_SETTINGS / WEISU_PLATFORM are not set")
        recorder = cls(crawler, settings, platform_id)
        crawler.signals.connect(recorder.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(recorder.spider_closed, signal=signals.spider_closed)
        return recorder

    def spider_opened(self, spider: Spider) -> None:
        self.opened_at = time.monotonic()
        platform = self.settings.platforms[self.platform_id]
        factory = session_factory_for(self.settings.database_url)
        with session_scope(factory) as session:
            sync_platforms(session, {self.platform_id: (platform.name, platform.kind, platform.enabled)})
            mark = session.scalar(select(Platform.high_water_mark).where(Platform.id == self.platform_id))
            run = CrawlRun(platform_id=self.platform_id, status="running", stats={})
            session.add(run)
            session.flush()
            self.run_id = run.id
        assert self.crawler.stats is not None
        self.crawler.stats.set_value(RUN_ID_STAT, self.run_id)
        if isinstance(spider, PlatformSpider):
            # Read here, before the first response is parsed, so paging can stop at seen content.
            spider.seen = seen_content(factory, self.platform_id, mark)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        stats = self.crawler.stats
        assert stats is not None
        values = stats.get_stats()
        items = int(values.get("item_scraped_count", 0))
        errors = sum(int(values.get(key, 0)) for key in ERROR_STATS)
        mark = values.get(HIGH_WATER_STAT)
        statuses = responses_by_status(values)
        dropped = dropped_reasons(values)
        figures = RunFigures.of(
            items, dropped, statuses, reached_seen=bool(values.get("weisu/stopped_at_seen"))
        )
        with session_scope(session_factory_for(self.settings.database_url)) as session:
            run = session.get(CrawlRun, self.run_id)
            if run is None:
                return
            run.finished_at = datetime.now(UTC)
            run.status = run_status(reason, items, errors)
            run.requests = int(values.get("downloader/request_count", 0))
            run.items = items
            run.posts_stored = int(values.get("weisu/posts_stored", 0))
            run.errors = errors
            run.cursor = mark
            run.stats = {k: v for k, v in values.items() if k.startswith("weisu/")} | {
                "finish_reason": reason
            }
            run.responses_by_status = statuses
            run.dropped = dropped
            run.duration_seconds = round(time.monotonic() - self.opened_at, 3)
            rules = self.settings.crawl_health
            earlier = previous_runs(session, self.platform_id, run.id, rules.lookback_runs)
            flag = layout_change(figures, [_figures(r) for r in earlier], rules)
            run.layout_changed = flag is not None
            run.health_reason = flag
            platform = session.get(Platform, self.platform_id)
            if platform is not None and mark and (platform.high_water_mark or "") < mark:
                platform.high_water_mark = mark


def _figures(run: CrawlRun) -> RunFigures:
    """An earlier run's figures from its row (runs from before the health columns count as clean)."""
    reached_seen = bool((run.stats or {}).get("weisu/stopped_at_seen"))
    return RunFigures.of(run.items, run.dropped or {}, run.responses_by_status or {}, reached_seen)
