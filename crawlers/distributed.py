"""Distributed crawling: any number of workers (`weisu crawl --distributed`) share one sweep through a
Redis frontier built on scrapy-redis (its scheduler, priority queue and request-fingerprint set).

A *sweep* has a clear start and end. The first worker to find no open sweep opens one (one Lua
script, so two workers starting together cannot both open it): it clears every platform's queue,
leases and seed flag, and the fingerprints the platform's rule does not keep
(``fingerprints_outlive_sweep``). Each platform is *seeded* once per sweep: the worker that claims
its seed flag pushes the spider's start requests; the others wait for the flag to read ``done`` and
push nothing. A platform's part of the sweep is over when it is seeded, its queue is empty and no
request of it is leased; every worker's spider then closes, and the last worker to finish ends the
sweep. A sweep whose workers all died stays open: the next workers resume it, fingerprints included.

A worker that dies loses nothing (a reliable queue): popping a request moves it, in the same Lua
script, into the platform's lease hash under a token naming the worker. The lease is released only
when Scrapy has finished with the request — downloaded and scraped, its new requests pushed and its
posts committed (the store pipeline's batch is flushed before leases are released) — or the request was turned
into a retry that is itself in the queue. Each worker keeps a heartbeat key with a short TTL; the
leases of a worker whose heartbeat expired go back to the queue and are crawled by another worker.
A request crawled twice so stores nothing twice: posts are unique in storage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from sqlalchemy import select
from twisted.internet.task import LoopingCall

from crawlers.frontier import (
    LEASE,
    PREFIX_SETTING,
    TICK_SECONDS,
    WORKER_ID,
    Keys,
    beat,
    claim_seed,
    client_for,
    end_sweep,
    free_orphaned_slots,
    heartbeat_key,
    open_sweep,
    platform_busy,
    pop_leased,
    requeue,
    requeue_orphans,
)
from crawlers.pipelines.store import StorePipeline
from crawlers.runner import CrawlResult
from settings import Settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import CrawlRun
from storage.queries import paused_platform_ids

logger = logging.getLogger(__name__)

#: This process as a frontier worker: host, pid and a random part (a pid is reused, a uuid is not).


class DistributedError(Exception):
    """A distributed crawl that cannot start: no WEISU_REDIS_URL, or its Redis does not answer."""


def redis_url_of(settings: Settings) -> str:
    """The shared Redis URL; DistributedError (one line naming the variable) when it is unset."""
    if not settings.redis_url:
        raise DistributedError(
            "WEISU_REDIS_URL is not set; a distributed crawl needs the Redis its workers share"
        )
    return settings.redis_url


# --- Scrapy components ------------------------------------------------------------------------


class LeasedQueue(PriorityQueue):
    """scrapy-redis's priority queue whose pop leases the request instead of dropping it (see above)."""

    counter = 0

    def pop(self, timeout: int = 0) -> Request | None:
        keys = Keys(self.spider.settings[PREFIX_SETTING], self.spider.name)
        LeasedQueue.counter += 1
        token = f"{WORKER_ID}|{LeasedQueue.counter}"
        data = pop_leased(self.server, self.key, keys, token)
        if data is None:
            return None
        request: Request = self._decode_request(data)
        request.meta[LEASE] = token
        return request

    def _encode_request(self, request: Request) -> Any:
        # A retry or a copied request carries its parent's lease token: the queue never stores one.
        obj = request.to_dict(spider=self.spider)
        obj["meta"] = {k: v for k, v in obj["meta"].items() if k != LEASE}
        return self.serializer.dumps(obj)


class LeasedScheduler(Scheduler):
    """scrapy-redis's scheduler that releases a lease once the engine is done with its request."""

    crawler: Crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeasedScheduler:
        scheduler: LeasedScheduler = super().from_crawler(crawler)
        scheduler.crawler = crawler
        scheduler.leased = {}
        # scrapy-redis 0.9.1 counts with the spider argument Scrapy 2.19 deprecates: counted here.
        scheduler.stats = None
        return scheduler

    leased: dict[str, Request]

    def enqueue_request(self, request: Request) -> bool:
        queued: bool = super().enqueue_request(request)
        if queued and self.crawler.stats is not None:
            self.crawler.stats.inc_value("scheduler/enqueued/redis")
        return queued

    def next_request(self) -> Request | None:
        self.release_finished()
        request: Request | None = super().next_request()
        if request is not None:
            self.leased[request.meta[LEASE]] = request
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value("scheduler/dequeued/redis")
        return request

    def release_finished(self) -> None:
        """Release the leases of requests the engine no longer holds (downloaded, scraped, stored)."""
        engine = self.crawler.engine
        slot = getattr(engine, "_slot", None)
        # The engine keeps a request in its slot from the scheduler's pop until its download and
        # scrape have finished (or it became a retry already queued): Scrapy 2.19's ExecutionEngine.
        held = slot.inprogress if slot is not None else set()
        done = [token for token, request in self.leased.items() if request not in held]
        if done:
            # Their posts may wait in the store pipeline's batch: committed before the leases go.
            self._flush_stored_posts()
            keys = Keys(self.crawler.settings[PREFIX_SETTING], self.spider.name)
            self.server.hdel(keys.leases, *done)
            for token in done:
                del self.leased[token]

    def _flush_stored_posts(self) -> None:
        scraper = getattr(self.crawler.engine, "scraper", None)
        for pipeline in getattr(getattr(scraper, "itemproc", None), "middlewares", ()):
            if isinstance(pipeline, StorePipeline):
                pipeline.flush()

    def close(self, reason: str) -> None:
        keys = Keys(self.crawler.settings[PREFIX_SETTING], self.spider.name)
        if reason == "finished":
            self.release_finished()
        # Shut down before its requests finished: they go back to the queue for another worker.
        for token in list(self.leased):
            requeue(self.server, keys, token)
        self.leased.clear()
        super().close(reason)


class SeedOnce:
    """Spider middleware: a platform's start requests are pushed by one worker per sweep."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.client = client_for(crawler.settings["REDIS_URL"])
        self.prefix = crawler.settings[PREFIX_SETTING]

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SeedOnce:
        if not crawler.settings.get("REDIS_URL"):
            raise NotConfigured("not a distributed crawl")
        return cls(crawler)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        assert self.crawler.spider is not None
        keys = Keys(self.prefix, self.crawler.spider.name)
        while (claim := claim_seed(self.client, keys, self.prefix)) != "mine":
            if claim == "done":
                return
            await asyncio.sleep(TICK_SECONDS)  # another worker is seeding; it may die doing so
        async for request in start:
            yield request
        # The engine asks for the next start request only after it pushed the previous one.
        self.client.set(keys.seed, "done")


class SweepWatch:
    """Extension: the heartbeat, lease release and orphan re-queueing, and keeping a spider open
    while its platform's sweep is still going on at another worker."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.client = client_for(crawler.settings["REDIS_URL"])
        self.prefix = crawler.settings[PREFIX_SETTING]
        self.keys = Keys(self.prefix, crawler.settings["WEISU_PLATFORM"])
        self.loop = LoopingCall(self.tick)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SweepWatch:
        if not crawler.settings.get("REDIS_URL"):
            raise NotConfigured("not a distributed crawl")
        watch = cls(crawler)
        crawler.signals.connect(watch.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(watch.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(watch.spider_closed, signal=signals.spider_closed)
        return watch

    def spider_opened(self, spider: Spider) -> None:
        self.loop.start(TICK_SECONDS, now=True)

    def spider_closed(self, spider: Spider) -> None:
        if self.loop.running:
            self.loop.stop()

    def _scheduler(self) -> LeasedScheduler | None:
        slot = getattr(self.crawler.engine, "_slot", None)
        scheduler = getattr(slot, "scheduler", None)
        return scheduler if isinstance(scheduler, LeasedScheduler) else None

    def tick(self) -> None:
        try:
            beat(self.client, self.prefix)
            if (scheduler := self._scheduler()) is not None:
                scheduler.release_finished()
            requeue_orphans(self.client, self.keys)
            free_orphaned_slots(self.client, self.keys)
            slot = getattr(self.crawler.engine, "_slot", None)
            if slot is not None:
                # Ask the engine now, not at its own 5-second heartbeat, to pull what another worker
                # pushed (or an orphan put back), or to see again whether the spider may close.
                slot.nextcall.schedule()
        except redis.RedisError:
            logger.exception("distributed crawl: Redis unreachable; retrying")

    def spider_idle(self, spider: Spider) -> None:
        self.tick()
        if platform_busy(self.client, self.keys):
            raise DontCloseSpider


def distributed_settings(settings: Settings, platform_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """The Scrapy settings that turn one platform's crawler (crawlers.config) into a frontier worker."""
    keys = Keys(settings.redis_prefix, platform_id)
    return values | {
        "SCHEDULER": "crawlers.distributed.LeasedScheduler",
        "SCHEDULER_QUEUE_CLASS": "crawlers.distributed.LeasedQueue",
        "SCHEDULER_QUEUE_KEY": keys.requests.replace("%", "%%"),
        "SCHEDULER_DUPEFILTER_KEY": keys.fingerprints.replace("%", "%%"),
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        # The sweep, not a worker's close, decides when the frontier is cleared (open_sweep).
        "SCHEDULER_PERSIST": True,
        "SCHEDULER_SERIALIZER": "crawlers.frontier_codec",
        "REDIS_URL": redis_url_of(settings),
        PREFIX_SETTING: settings.redis_prefix,
        # Politeness is kept across workers by the shared limiter, not by each worker's own slots.
        "WEISU_SHARED_DELAY": values["DOWNLOAD_DELAY"],
        "WEISU_SHARED_CONCURRENCY": values["CONCURRENT_REQUESTS_PER_DOMAIN"],
        "DOWNLOAD_DELAY": 0.0,
        "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOADER_MIDDLEWARES": values["DOWNLOADER_MIDDLEWARES"]
        | {"crawlers.middlewares.shared_politeness.SharedPolitenessMiddleware": 950},
        "SPIDER_MIDDLEWARES": values["SPIDER_MIDDLEWARES"] | {"crawlers.distributed.SeedOnce": 100},
        "EXTENSIONS": values["EXTENSIONS"] | {"crawlers.distributed.SweepWatch": 510},
    }


@dataclass
class Worker:
    """This process's part in a sweep: joined before the crawlers start, ended after they close."""

    client: redis.Redis
    prefix: str
    sweep: str
    opened: bool
    platform_ids: tuple[str, ...]

    def finish(self) -> bool:
        """End the sweep if nothing is left anywhere; stop the heartbeat. True when this call ended it."""
        ended = end_sweep(self.client, self.prefix, self.sweep, self.platform_ids)
        self.client.delete(heartbeat_key(self.prefix))
        return ended


def join_sweep(settings: Settings, platform_ids: Sequence[str]) -> Worker:
    """Start this worker's heartbeat and join (or open) the sweep of ``platform_ids``."""
    client = client_for(redis_url_of(settings))
    beat(client, settings.redis_prefix)
    sweep, opened = open_sweep(client, settings, platform_ids)
    logger.info(
        "distributed crawl: worker %s %s sweep %s", WORKER_ID, "opened" if opened else "joined", sweep
    )
    return Worker(client, settings.redis_prefix, sweep, opened, tuple(platform_ids))


def run_worker(settings: Settings, platform_ids: list[str] | None = None) -> list[CrawlResult]:
    """`weisu crawl --distributed`: crawl ``platform_ids`` (None: every enabled, unpaused platform) as one
    worker of the shared sweep, in this process, until the sweep is over; this worker's runs."""
    from crawlers.crawl_process import run_distributed

    url = redis_url_of(settings)
    try:
        client_for(url).ping()
    except redis.RedisError as error:
        raise DistributedError(
            f"the Redis at WEISU_REDIS_URL does not answer: {type(error).__name__}"
        ) from None
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    try:
        with session_scope(factory) as session:
            keys = list(settings.enabled_platforms()) if platform_ids is None else list(platform_ids)
            if platform_ids is None:
                paused = paused_platform_ids(session)
                keys = [key for key in keys if key not in paused]
        if not keys:
            return []
        runs = run_distributed(settings, keys)
        with session_scope(factory) as session:
            rows = {
                run.id: run for run in session.scalars(select(CrawlRun).where(CrawlRun.id.in_(runs.values())))
            }
            return [
                CrawlResult(key, row.status, row.requests, row.items, row.posts_stored, row.errors)
                for key, run_id in runs.items()
                if (row := rows.get(run_id)) is not None
            ]
    finally:
        engine.dispose()
