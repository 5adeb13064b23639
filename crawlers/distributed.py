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
when the worker is done with the request — its new requests pushed and its posts committed (the store
pipeline's batch is flushed before leases are released), or a retry of it queued — as
crawlers/leases.py tells from Scrapy's public signals. Each worker keeps a heartbeat key with a short
TTL; the leases of a worker whose heartbeat expired go back to the queue and are crawled by another
worker. A request crawled twice so stores nothing twice: posts are unique in storage. A request's
fingerprint is recorded in the same Redis step as its push (crawlers.frontier.push_unseen): a request
the duplicate filter knows is always queued, leased or done, so the requests a dead worker's lease
produces again when crawled once more are either queued already or queued now. A request lost
after its retries waits for its second chance in Redis, not in the worker (``SharedSecondChances``):
it goes back into the queue once nothing else of its platform is queued or leased at any worker.

A worker whose sweep vanishes from Redis (flushed, its keys expired, or ended or replaced elsewhere)
while its platforms still had work stops, with one line naming the sweep (``DistributedError``),
instead of waiting for a frontier that will never fill.

Each worker writes one crawl_runs row per platform, its share of the sweep, tagged with the sweep's id;
crawlers/sweep_runs.py settles the shares once all have closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import redis
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from crawlers import frontier_codec
from crawlers.extensions.crawl_runs import SWEEP_SETTING
from crawlers.frontier import (
    LEASE,
    PREFIX_SETTING,
    TICK_SECONDS,
    WORKER_ID,
    Keys,
    beat,
    claim_seed,
    client_for,
    current_sweep,
    due_second_chances,
    end_sweep,
    free_orphaned_slots,
    heartbeat_key,
    keep_second_chance,
    open_sweep,
    platform_busy,
    pop_leased,
    push_unseen,
    requeue,
    requeue_orphans,
)
from crawlers.leases import PARENT, LeaseTracker, lease_of, tracker_of
from crawlers.pipelines.store import flush_posts
from crawlers.runner import CrawlResult
from crawlers.spiders.base import PlatformSpider
from crawlers.sweep_runs import settle_sweep
from settings import Settings
from storage.db import make_engine, make_session_factory, session_factory_for, session_scope
from storage.models import CrawlRun
from storage.queries import paused_platform_ids

logger = logging.getLogger(__name__)

#: This process as a frontier worker: host, pid and a random part (a pid is reused, a uuid is not).


#: How long the list of a sweep's crawl_runs ids is kept after its last worker joined (a sweep resumed
#: later than this settles only the shares of the workers that joined since).
RUNS_KEY_TTL_SECONDS = 7 * 24 * 3600


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

#: The close reason of a spider whose sweep vanished from Redis while its platform was not done.
SWEEP_GONE = "sweep_gone"


def encode_request(request: Request, spider: Spider) -> str:
    """A request as the frontier stores it (JSON, crawlers/frontier_codec.py), without the lease and
    producer tokens a copy of a leased request carries: those name this process, not the request."""
    obj = request.to_dict(spider=spider)
    obj["meta"] = {k: v for k, v in obj["meta"].items() if k not in (LEASE, PARENT)}
    return frontier_codec.dumps(obj)


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
        return encode_request(request, self.spider)


class LeasedScheduler(Scheduler):
    """scrapy-redis's scheduler that releases a lease once the worker is done with its request, as
    crawlers/leases.py tells from Scrapy's public signals."""

    crawler: Crawler
    tracker: LeaseTracker

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeasedScheduler:
        scheduler: LeasedScheduler = super().from_crawler(crawler)
        scheduler.crawler = crawler
        scheduler.tracker = tracker_of(crawler)
        # scrapy-redis 0.9.1 counts with the spider argument Scrapy 2.19 deprecates: counted here.
        scheduler.stats = None
        crawler.signals.connect(scheduler.spider_idle, signal=signals.spider_idle)
        return scheduler

    def open(self, spider: Spider) -> Any:
        _SCHEDULERS[self.crawler] = self
        return super().open(spider)

    @property
    def keys(self) -> Keys:
        """The frontier keys of this scheduler's platform (its queue and fingerprint set are these)."""
        return Keys(self.crawler.settings[PREFIX_SETTING], self.spider.name)

    def enqueue_request(self, request: Request) -> bool:
        # scrapy-redis records the fingerprint, then pushes: two steps a killed worker can split
        # (crawlers.frontier.push_unseen says what that would lose). Here they are one.
        fingerprint = None if request.dont_filter else self.df.request_fingerprint(request)
        data = self.queue._encode_request(request)
        queued = push_unseen(self.server, self.keys, fingerprint, -request.priority, data)
        if not queued:
            self.df.log(request, self.spider)
        self.tracker.pushed(request)
        if queued and self.crawler.stats is not None:
            self.crawler.stats.inc_value("scheduler/enqueued/redis")
        return queued

    def next_request(self) -> Request | None:
        self.release_finished()
        request: Request | None = super().next_request()
        if request is not None:
            self.tracker.leased(request.meta[LEASE])
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value("scheduler/dequeued/redis")
        return request

    def spider_idle(self) -> None:
        self.tracker.idle()
        self.release_finished()

    def release_finished(self) -> None:
        """Release the leases of requests this worker is done with (pushed on, scraped, stored)."""
        done = self.tracker.done()
        if not done:
            return
        # Their posts may wait in the store pipeline's batch: committed before the leases go. A flush
        # that failed keeps them leased (put back in the queue when the spider closes).
        answers = self.crawler.signals.send_catch_log(signal=flush_posts)
        if any(isinstance(result, Failure) for _, result in answers):
            return
        self.server.hdel(self.keys.leases, *done)
        self.tracker.forget(done)

    def close(self, reason: str) -> None:
        keys = self.keys
        if reason == "finished":
            self.tracker.idle()  # a spider closes "finished" only when its engine holds no request
            self.release_finished()
        # Shut down before its requests finished: they go back to the queue for another worker.
        for token in self.tracker.all():
            requeue(self.server, keys, token)
        self.tracker.forget(self.tracker.all())
        _SCHEDULERS.pop(self.crawler, None)
        super().close(reason)


_SCHEDULERS: WeakKeyDictionary[Crawler, LeasedScheduler] = WeakKeyDictionary()


class LeaseOutput:
    """Spider middleware, outermost (next to the engine): counts what a leased request's callback
    yields, and says when the output is over (crawlers/leases.py)."""

    def __init__(self, crawler: Crawler) -> None:
        self.tracker = tracker_of(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeaseOutput:
        if not crawler.settings.get("REDIS_URL"):
            raise NotConfigured("not a distributed crawl")
        return cls(crawler)

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        token = lease_of(response)
        try:
            async for output in result:
                yield self.tracker.produced(token, output)
        finally:
            self.tracker.finished(token)


class SharedSecondChances:
    """A distributed worker's second chances: kept in Redis, fetched (by any worker) once the
    platform's part of the sweep is otherwise over, so a worker that dies loses none."""

    def __init__(self, client: redis.Redis, keys: Keys, spider: Spider) -> None:
        self.client, self.keys, self.spider = client, keys, spider

    def keep(self, request: Request) -> None:
        # What differs between two tries of one request is no part of it: a request crawled again
        # after its worker died is kept once.
        meta = {k: v for k, v in request.meta.items() if k not in VOLATILE_META}
        keep_second_chance(self.client, self.keys, encode_request(request.replace(meta=meta), self.spider))

    def due(self) -> list[Request]:
        due_second_chances(self.client, self.keys)
        return []  # moved into the shared queue: whichever worker pops them fetches them


#: Meta Scrapy sets on each try of a request (how long it took, where it was sent), not kept.
VOLATILE_META = ("download_latency", "download_slot", "download_timeout", LEASE, PARENT)


class SeedOnce:
    """Spider middleware: a platform's start requests are pushed by one worker per sweep."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.client = client_for(crawler.settings["REDIS_URL"])
        self.prefix = crawler.settings[PREFIX_SETTING]
        self.sweep = crawler.settings[SWEEP_SETTING]

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
        if current_sweep(self.client, self.prefix) != self.sweep:
            return  # the sweep is gone (SweepWatch says so and stops): seed nothing into a stale frontier
        async for request in start:
            yield request
        # The engine asks for the next start request only after it pushed the previous one.
        self.client.set(keys.seed, "done")


class SweepWatch:
    """Extension: the heartbeat, lease release and orphan re-queueing, second chances coming due,
    keeping a spider open while its platform's sweep is still going on at another worker, and
    stopping it when the sweep has vanished from Redis."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.client = client_for(crawler.settings["REDIS_URL"])
        self.prefix = crawler.settings[PREFIX_SETTING]
        self.sweep = crawler.settings[SWEEP_SETTING]
        self.keys = Keys(self.prefix, crawler.settings["WEISU_PLATFORM"])
        self.loop = LoopingCall(self.tick)
        self.gone = False

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
        if isinstance(spider, PlatformSpider):
            spider.second_chances = SharedSecondChances(self.client, self.keys, spider)
        self.loop.start(TICK_SECONDS, now=True)

    def spider_closed(self, spider: Spider) -> None:
        if self.loop.running:
            self.loop.stop()

    def tick(self) -> None:
        try:
            beat(self.client, self.prefix)
            if (scheduler := _SCHEDULERS.get(self.crawler)) is not None:
                scheduler.release_finished()
            requeue_orphans(self.client, self.keys)
            free_orphaned_slots(self.client, self.keys)
            due_second_chances(self.client, self.keys)
            if self.sweep_vanished():
                self.stop()
                return
            _wake(self.crawler)
        except redis.RedisError:
            logger.exception("distributed crawl: Redis unreachable; retrying")

    def sweep_vanished(self) -> bool:
        """The sweep this worker joined is no longer Redis's open sweep, while its platform still had
        work: Redis was flushed or its keys expired, or the sweep was ended or replaced elsewhere."""
        if self.gone:
            return True
        if current_sweep(self.client, self.prefix) == self.sweep:
            return False
        self.gone = platform_busy(self.client, self.keys)
        return self.gone

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None:
            deferred_from_coro(engine.close_spider_async(reason=SWEEP_GONE))

    def spider_idle(self, spider: Spider) -> None:
        self.tick()
        if self.gone:
            return
        if platform_busy(self.client, self.keys):
            raise DontCloseSpider


def _wake(crawler: Crawler) -> None:
    """Ask the engine now, not at its own 5-second heartbeat, to pull what another worker pushed (or
    an orphan put back), or to see again whether the spider may close. Scrapy has no public call for
    it; without it (a Scrapy that renamed the slot) a worker only reacts up to 5 s later."""
    slot = getattr(crawler.engine, "_slot", None)
    nextcall = getattr(slot, "nextcall", None)
    if nextcall is not None:
        nextcall.schedule()


def distributed_settings(
    settings: Settings, platform_id: str, values: dict[str, Any], sweep: str
) -> dict[str, Any]:
    """The Scrapy settings that turn one platform's crawler (crawlers.config) into a worker of ``sweep``."""
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
        SWEEP_SETTING: sweep,
        # Politeness is kept across workers by the shared limiter, not by each worker's own slots.
        "WEISU_SHARED_DELAY": values["DOWNLOAD_DELAY"],
        "WEISU_SHARED_CONCURRENCY": values["CONCURRENT_REQUESTS_PER_DOMAIN"],
        "DOWNLOAD_DELAY": 0.0,
        "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOADER_MIDDLEWARES": values["DOWNLOADER_MIDDLEWARES"]
        | {"crawlers.middlewares.shared_politeness.SharedPolitenessMiddleware": 950},
        # LeaseOutput next to the engine (before Scrapy's own at 25 and up): it sees the output the
        # engine gets, after every other middleware has filtered it.
        "SPIDER_MIDDLEWARES": values["SPIDER_MIDDLEWARES"]
        | {"crawlers.distributed.SeedOnce": 100, "crawlers.distributed.LeaseOutput": 10},
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
    database_url: str = ""

    @property
    def runs_key(self) -> str:
        """Every share's crawl_runs id, from every worker of the sweep (outlives the sweep a while)."""
        return f"{self.prefix}sweep:{self.sweep}:runs"

    def opened_runs(self, run_ids: Sequence[int]) -> None:
        if run_ids:
            self.client.rpush(self.runs_key, *run_ids)
            self.client.expire(self.runs_key, RUNS_KEY_TTL_SECONDS)

    def finish(self, crawlers: Sequence[Crawler] = ()) -> bool:
        """End the sweep if nothing is left anywhere; stop the heartbeat. True when this call ended it.
        DistributedError (one line) when the sweep vanished from Redis before ``crawlers`` were done."""
        gone = [
            c.spider.name
            for c in crawlers
            if c.stats is not None
            and c.spider is not None
            and c.stats.get_value("finish_reason") == SWEEP_GONE
        ]
        if gone:
            self.client.delete(heartbeat_key(self.prefix))
            raise DistributedError(
                f"sweep {self.sweep} vanished from Redis (flushed, expired, or ended elsewhere) before "
                f"{len(gone)} platform(s) were done ({', '.join(sorted(gone))}); this worker stopped"
            )
        ended = end_sweep(self.client, self.prefix, self.sweep, self.platform_ids)
        self.client.delete(heartbeat_key(self.prefix))
        run_ids = [int(run_id) for run_id in self.client.lrange(self.runs_key, 0, -1)]
        try:
            # The crawl's own pooled connection: a worker never holds more than it crawled with.
            with session_scope(session_factory_for(self.database_url)) as session:
                settle_sweep(session, run_ids)
        except SQLAlchemyError as error:
            # Its posts are stored and its runs closed: only the bookkeeping waits. Every worker of the
            # sweep tries it as it finishes, and an unsettled sweep moves no mark (the safe side).
            logger.warning(
                "distributed crawl: sweep %s not settled by this worker: %s", self.sweep, type(error).__name__
            )
        return ended


def join_sweep(settings: Settings, platform_ids: Sequence[str]) -> Worker:
    """Start this worker's heartbeat and join (or open) the sweep of ``platform_ids``."""
    client = client_for(redis_url_of(settings))
    beat(client, settings.redis_prefix)
    sweep, opened = open_sweep(client, settings, platform_ids)
    logger.info(
        "distributed crawl: worker %s %s sweep %s", WORKER_ID, "opened" if opened else "joined", sweep
    )
    return Worker(client, settings.redis_prefix, sweep, opened, tuple(platform_ids), settings.database_url)


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
