"""When a distributed worker may release a lease (crawlers/leases.py): only once what the leased request
produced is pushed or stored, told by Scrapy's public signals — and a request lost after its retries
waits in Redis, not in the worker, for its second chance."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import scrapy
from distributed_helpers import RedisSpace
from scrapy.http import TextResponse
from scrapy.utils.test import get_crawler
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from crawlers.extensions.crawl_runs import CrawlRunRecorder
from crawlers.frontier import LEASE, Keys, due_second_chances, end_sweep, keep_second_chance, open_sweep
from crawlers.items import PostItem
from crawlers.leases import PARENT, LeaseTracker
from crawlers.pipelines.store import StorePipeline
from crawlers.spiders import JsonFeedSpider
from settings import Settings, load_settings
from storage.db import session_factory_for, session_scope
from storage.models import Post

URL = "http://127.0.0.1/p/weibo/api?page=1"


def _leased(tracker: LeaseTracker, token: str = "w|1") -> scrapy.Request:
    tracker.leased(token)
    return scrapy.Request(URL, meta={LEASE: token})


def test_a_responses_lease_is_done_once_its_output_is_over_and_each_request_and_item_settled() -> None:
    tracker = LeaseTracker()
    request = _leased(tracker)
    response = TextResponse(URL, body=b"{}", request=request)
    tracker.response_received(response, request)
    child = tracker.produced("w|1", scrapy.Request(URL + "&page=2"))
    tracker.produced("w|1", {"external_id": "1"})
    tracker.finished("w|1")  # the callback's output is exhausted
    states = [tracker.done()]
    tracker.pushed(child)
    states.append(tracker.done())
    tracker.item_settled({"external_id": "1"}, response)
    states.append(tracker.done())
    assert states == [[], [], ["w|1"]]
    assert PARENT not in child.meta  # the producer's token never reaches the queue


def test_a_retry_of_an_unanswered_lease_once_queued_finishes_it() -> None:
    tracker = LeaseTracker()
    request = _leased(tracker)
    tracker.pushed(request.replace(dont_filter=True))  # RetryMiddleware's copy carries the token
    assert tracker.done() == ["w|1"]


def test_an_errback_after_an_http_error_status_is_left_to_the_spider_middleware() -> None:
    tracker = LeaseTracker()
    request = _leased(tracker)
    tracker.response_received(TextResponse(URL, status=503, request=request), request)
    tracker.errback_handled(request, [scrapy.Request(URL + "&page=2")])
    assert tracker.done() == []


def test_a_download_failures_lease_waits_for_the_errbacks_requests_to_be_pushed() -> None:
    tracker = LeaseTracker()
    request = _leased(tracker)
    onwards = scrapy.Request(URL + "&page=2")
    tracker.errback_handled(request, [onwards])
    before = tracker.done()
    tracker.pushed(onwards)
    assert (before, tracker.done()) == ([], ["w|1"])


def test_an_idle_engine_holds_no_request_so_every_lease_is_done() -> None:
    tracker = LeaseTracker()
    _leased(tracker, "w|1")
    _leased(tracker, "w|2")
    tracker.idle()
    assert tracker.done() == ["w|1", "w|2"]


@pytest.fixture
def settings(space: RedisSpace) -> Settings:
    return space.distributed(load_settings(env={}))


def test_a_second_chance_waits_in_redis_until_nothing_else_of_its_platform_is_queued_or_leased(
    space: RedisSpace, settings: Settings
) -> None:
    keys = Keys(settings.redis_prefix, "weibo")
    space.client.set(keys.seed, "done")
    space.client.hset(keys.leases, "w|1", "r1")
    keep_second_chance(space.client, keys, "lost")
    moved = [due_second_chances(space.client, keys)]  # another request of the platform is out
    space.client.hdel(keys.leases, "w|1")
    moved.append(due_second_chances(space.client, keys))
    assert moved == [0, 1]
    assert space.client.zrange(keys.requests, 0, -1) == [b"lost"]
    assert space.client.exists(keys.second) == 0


def test_a_sweep_does_not_end_while_a_second_chance_waits(space: RedisSpace, settings: Settings) -> None:
    sweep, _ = open_sweep(space.client, settings, ["weibo"])
    keys = Keys(settings.redis_prefix, "weibo")
    space.client.set(keys.seed, "done")
    keep_second_chance(space.client, keys, "lost")
    assert end_sweep(space.client, settings.redis_prefix, sweep, ["weibo"]) is False


def test_posts_whose_commit_failed_stay_in_the_batch_for_the_next_flush(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker releases leases after a flush that succeeds: were the failed batch dropped, the next
    # (empty) flush would succeed and release the leases of posts never stored.
    settings = load_settings(env={"WEISU_DATABASE_URL": database_url})
    crawler = get_crawler(JsonFeedSpider, {"WEISU_SETTINGS": settings, "WEISU_PLATFORM": "weibo"})
    CrawlRunRecorder.from_crawler(crawler).spider_opened(
        JsonFeedSpider.from_crawler(crawler, platform_id="weibo")
    )
    store = StorePipeline(crawler, settings.database_url, settings.author_hash_key, batch_size=10)
    store.process_item(_post("1"))

    def refused(*args: object, **kwargs: object) -> int:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    with monkeypatch.context() as patched:
        patched.setattr("crawlers.pipelines.store.insert_posts", refused)
        with pytest.raises(OperationalError):
            store.flush()
    store.process_item(_post("2"))
    store.flush()
    with session_scope(session_factory_for(database_url)) as session:
        stored = sorted(session.scalars(select(Post.external_id)))
    assert (stored, store.batch) == (["1", "2"], [])


def _post(external_id: str) -> PostItem:
    return PostItem(
        platform_id="weibo",
        external_id=external_id,
        url=f"https://m.weibo.cn/detail/{external_id}",
        text=f"停水 {external_id}",
        author="1986399651",
        published_at=datetime(2026, 11, 28, 2, 0, tzinfo=UTC),
    )
