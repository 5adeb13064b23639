"""Record one crawl_runs row per platform per run (counts, health, layout-change flag), hand the spider
what was seen and the gaps to fetch again, move the high-water mark — only when the run closes clean
(crawlers/incremental.py: the gap rule)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from crawlers.extensions.health import (
    RunFigures,
    could_be_layout_change,
    dropped_reasons,
    gaps_reason,
    layout_change,
    responses_by_status,
)
from crawlers.extensions.run_owner import OWNER_KEY, close_interrupted, current_owner
from crawlers.gaps import AgedGap, GapBook, OpenGap, age_out, report_aged_out
from crawlers.incremental import seen_content
from crawlers.pipelines.store import HIGH_WATER_STAT, RUN_ID_STAT
from crawlers.spiders.base import PlatformSpider
from crawlers.walls import access_outcome
from storage.db import session_factory_for, session_scope
from storage.models import AccessStatus, CrawlRun, CrawlRunStatus, GapState, Platform, Post
from storage.queries import finish_run, open_gaps, previous_runs, sync_platforms
from storage.vocabulary import SWEEP_STAT

#: What a run counts as errors: malformed pages, and the ERROR lines Scrapy attributes to this spider
#: (``weisu/errors_logged``, see SpiderErrorCounter) — its "Gave up retrying" among them. A request lost
#: after its retries is also a gap (``weisu/gaps_recorded``, by the spider's errback).
ERROR_STATS = ("weisu/malformed_pages", "weisu/errors_logged")
#: Crawler setting naming the distributed sweep this crawler is a worker of (absent: not distributed).
SWEEP_SETTING = "WEISU_SWEEP_ID"
#: Crawler setting holding the OpenedRun that open_runs made for this crawler's platform.
OPENED_RUN_SETTING = "WEISU_OPENED_RUN"


class SpiderErrorCounter(logging.Handler):
    """Counts the ERROR records Scrapy attributes to one spider (``extra={"spider": ...}``).

    Scrapy's own ``log_count/ERROR`` is kept by a handler every crawler adds to the root logger, so in a
    sweep of many crawlers in one process each platform counted every platform's errors: a healthy
    platform beside a failing one closed "partial".
    """

    def __init__(self, crawler: Crawler, spider: Spider) -> None:
        super().__init__(level=logging.ERROR)
        self.crawler, self.spider = crawler, spider

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "spider", None) is self.spider and self.crawler.stats is not None:
            self.crawler.stats.inc_value("weisu/errors_logged")


@dataclass(frozen=True)
class OpenedRun:
    """A crawl_runs row inserted as "running", with what the platform had stored when it was opened."""

    run_id: int
    high_water_mark: str | None
    #: Whether any post of the platform was stored before this run: if not, no thread can be known.
    has_posts: bool = True
    #: The platform's open gaps, fetched again first; and those given up as this run opened.
    gaps: tuple[OpenGap, ...] = ()
    aged_out: tuple[AgedGap, ...] = ()


def open_runs(settings: Any, platform_ids: Sequence[str], sweep: str | None = None) -> dict[str, OpenedRun]:
    """Open the runs of a whole sweep in one transaction, before its crawlers start (``sweep``: as this
    worker's shares of that distributed sweep).

    Each recorder would otherwise open its own run (sync, read the mark, insert) when its spider
    opens: 42 small transactions at the start of a sweep.
    """
    with session_scope(session_factory_for(settings.database_url)) as session:
        return _open_runs(session, settings, platform_ids, sweep)


def _open_runs(
    session: Session, settings: Any, platform_ids: Sequence[str], sweep: str | None = None
) -> dict[str, OpenedRun]:
    platforms = {key: settings.platforms[key] for key in platform_ids}
    # Runs left "running" by a crawl that was killed are closed first, so they never read as live.
    close_interrupted(session)
    sync_platforms(session, {key: (p.name, p.kind, p.enabled) for key, p in platforms.items()})
    listed = Platform.id.in_(list(platforms))
    marks: dict[str, str | None] = {
        key: mark
        for key, mark in session.execute(select(Platform.id, Platform.high_water_mark).where(listed))
    }
    # One probe of the posts index per platform, instead of a lookup per listing page on a first crawl.
    with_posts = set(
        session.scalars(select(Platform.id).where(listed, exists().where(Post.platform_id == Platform.id)))
    )
    owner: dict[str, Any] = {OWNER_KEY: current_owner()} | ({SWEEP_STAT: sweep} if sweep else {})
    runs = {key: CrawlRun(platform_id=key, status=CrawlRunStatus.RUNNING, stats=owner) for key in platforms}
    session.add_all(list(runs.values()))
    session.flush()
    # One query for every platform's open gaps; those past their age or tries are given up here.
    gaps = open_gaps(session, list(platforms))
    aged = age_out(session, gaps, settings.crawl_gaps, datetime.now(UTC))
    pending = [gap for gap in gaps if gap.state == GapState.OPEN]
    return {
        key: OpenedRun(
            run.id,
            marks.get(key),
            key in with_posts,
            gaps=tuple(OpenGap.of(gap) for gap in pending if gap.platform_id == key),
            aged_out=tuple(gap for gap in aged if gap.platform_id == key),
        )
        for key, run in runs.items()
    }


def run_status(reason: str, items: int, errors: int) -> str:
    """ok: finished cleanly; partial: finished with errors but found posts; failed: anything else."""
    if reason == "finished" and errors == 0:
        return CrawlRunStatus.OK
    if reason == "finished" and items > 0:
        return CrawlRunStatus.PARTIAL
    return CrawlRunStatus.FAILED


class CrawlRunRecorder:
    def __init__(self, crawler: Crawler, settings: Any, platform_id: str) -> None:
        self.crawler = crawler
        self.settings = settings
        self.platform_id = platform_id
        self.run_id: int | None = None
        self.opened_at = time.monotonic()
        #: The run open_runs opened for this crawler, if the sweep opened them all at once.
        self.opened: OpenedRun | None = crawler.settings.get(OPENED_RUN_SETTING)
        self.error_counter: SpiderErrorCounter | None = None

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
        self.error_counter = SpiderErrorCounter(self.crawler, spider)
        logging.root.addHandler(self.error_counter)
        factory = session_factory_for(self.settings.database_url)
        opened = self.opened
        if opened is None:
            with session_scope(factory) as session:
                opened = _open_runs(session, self.settings, [self.platform_id])[self.platform_id]
        self.run_id, mark = opened.run_id, opened.high_water_mark
        assert self.crawler.stats is not None
        self.crawler.stats.set_value(RUN_ID_STAT, self.run_id)
        if sweep := self.crawler.settings.get(SWEEP_SETTING):
            self.crawler.stats.set_value(SWEEP_STAT, sweep)
        for gap in opened.aged_out:
            self.crawler.stats.inc_value("weisu/gaps_aged_out")
            report_aged_out(gap)
        if isinstance(spider, PlatformSpider):
            # Read here, before the first response is parsed, so paging can stop at seen content.
            spider.seen = seen_content(factory, self.platform_id, mark, stored_before=opened.has_posts)
            spider.gaps = GapBook(self.platform_id, factory, self.settings.crawl_gaps, opened.gaps)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.error_counter is not None:
            logging.root.removeHandler(self.error_counter)
        stats = self.crawler.stats
        assert stats is not None and self.run_id is not None  # spider_opened ran first
        values = stats.get_stats()
        items = int(values.get("item_scraped_count", 0))
        errors = sum(int(values.get(key, 0)) for key in ERROR_STATS)
        mark = values.get(HIGH_WATER_STAT)
        statuses = responses_by_status(values)
        dropped = dropped_reasons(values)
        figures = RunFigures.of(
            items, dropped, statuses, reached_seen=bool(values.get("weisu/stopped_at_seen"))
        )
        access, access_reason = access_outcome(values, answered=figures.ok_responses > 0)
        walled = access not in (None, AccessStatus.OK)
        # A run that lost a request is never clean, whatever was logged (the gap rule); nor is one an
        # entry point of which stopped at a wall: it did not page down to what earlier runs reached,
        # so neither its mark nor the board threads it stored may count as proven continuous.
        lost = errors or int(values.get("weisu/gaps_recorded", 0)) or walled
        status = run_status(reason, items, int(lost))
        # A plain UPDATE of the run (storage.queries.finish_run): loading its row would cost a query.
        with session_scope(session_factory_for(self.settings.database_url)) as session:
            rules = self.settings.crawl_health
            # A walled run parsed nothing because it was refused, not because the layout changed. The
            # earlier runs are read only when they could make this one a layout change (most runs not).
            flag = None
            if not walled and could_be_layout_change(figures, rules):
                earlier = previous_runs(session, self.platform_id, self.run_id, rules.lookback_runs)
                flag = layout_change(figures, [_figures(r) for r in earlier], rules)
            health = "；".join(filter(None, [flag, gaps_reason(int(values.get("weisu/gaps_aged_out", 0)))]))
            row = {
                "finished_at": datetime.now(UTC),
                "status": status,
                "requests": int(values.get("downloader/request_count", 0)),
                "items": items,
                "posts_stored": int(values.get("weisu/posts_stored", 0)),
                "errors": errors,
                "cursor": mark,
                "stats": {k: v for k, v in values.items() if k.startswith("weisu/")}
                | {"finish_reason": reason},
                "responses_by_status": statuses,
                "dropped": dropped,
                "duration_seconds": round(time.monotonic() - self.opened_at, 3),
                "layout_changed": flag is not None,
                "health_reason": health or None,
                "access_status": access,
                "access_reason": access_reason,
            }
            # Only a clean run proved it paged down to the old mark without a hole (the gap rule); a
            # worker's share of a sweep proves it for its own requests only.
            share = values.get(SWEEP_STAT) is not None
            clean_mark = mark if mark and status == CrawlRunStatus.OK and not share else None
            finish_run(
                session,
                self.run_id,
                self.platform_id,
                row,
                access=None if access is None else (access, access_reason),
                mark=clean_mark,
            )


def _figures(run: CrawlRun) -> RunFigures:
    """An earlier run's figures from its row (runs from before the health columns count as clean)."""
    reached_seen = bool((run.stats or {}).get("weisu/stopped_at_seen"))
    return RunFigures.of(run.items, run.dropped or {}, run.responses_by_status or {}, reached_seen)
