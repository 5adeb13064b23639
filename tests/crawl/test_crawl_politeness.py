"""Politeness comes from config for every platform: robots.txt, delay, concurrency, AutoThrottle, User-Agent,
and a 429's Retry-After is waited out before the retry.

That the configured User-Agent is what the platforms see, and that obeying platforms never request a
disallowed path while a platform with obey_robots: false does, is proven on a real sweep in
test_crawl_faults.py.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from scrapy import Request
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from crawlers.config import crawler_settings, platforms_sharing_host
from crawlers.middlewares.retry_after import RetryAfterMiddleware, retry_after_seconds
from settings import load_settings

REAL = load_settings(env={})
SIMULATED = load_settings(env={"WEISU_SIMULATOR_URL": "http://127.0.0.1:8010"})
PLATFORMS = sorted(REAL.platforms)
#: Platforms alone on their host: the configured politeness applies to them unchanged.
ALONE = [key for key in PLATFORMS if platforms_sharing_host(REAL, key) == 1]


@pytest.mark.parametrize("platform_id", ALONE, ids=ALONE)
def test_each_platform_crawls_with_its_own_configured_politeness(platform_id: str) -> None:
    politeness = REAL.platforms[platform_id].politeness
    scrapy_settings = crawler_settings(REAL, platform_id)
    assert {
        key: scrapy_settings[key]
        for key in ("ROBOTSTXT_OBEY", "DOWNLOAD_DELAY", "CONCURRENT_REQUESTS_PER_DOMAIN", "USER_AGENT")
    } == {
        "ROBOTSTXT_OBEY": politeness.obey_robots,
        "DOWNLOAD_DELAY": politeness.download_delay,
        "CONCURRENT_REQUESTS_PER_DOMAIN": politeness.concurrency,
        "USER_AGENT": REAL.user_agent,
    }
    assert scrapy_settings["AUTOTHROTTLE_ENABLED"] is True
    assert scrapy_settings["AUTOTHROTTLE_START_DELAY"] == politeness.download_delay


def test_platforms_on_one_host_split_its_rate_between_them() -> None:
    # bilibili (2.0 s, 1) and bilibili_search (3.0 s, 1) both crawl api.bilibili.com.
    shared = {key: crawler_settings(REAL, key) for key in ("bilibili", "bilibili_search")}
    assert {key: (s["DOWNLOAD_DELAY"], s["CONCURRENT_REQUESTS_PER_DOMAIN"]) for key, s in shared.items()} == {
        "bilibili": (4.0, 1),
        "bilibili_search": (6.0, 1),
    }


def test_only_the_known_shared_hosts_are_shared() -> None:
    # A comment platform and the listing of its threads (discover.from) share the real host.
    assert sorted(key for key in PLATFORMS if key not in ALONE) == [
        "bilibili",
        "bilibili_search",
        "douyin",
        "douyin_search",
        "kuaishou",
        "kuaishou_search",
        "nfplus",
        "nfplus_column",
        "sz12345",
        "szgov",
        "weixin_channels",
        "weixin_channels_posts",
        "xiaohongshu",
        "xiaohongshu_search",
        "zhihu",
        "zhihu_comments",
    ]


def test_every_real_platform_waits_between_requests_and_obeys_robots_unless_configured() -> None:
    assert [key for key, p in REAL.platforms.items() if p.politeness.download_delay <= 0] == []
    obeying = [key for key, p in REAL.platforms.items() if p.politeness.obey_robots]
    assert len(obeying) == len(REAL.platforms)  # every shipped entry obeys; a false must be deliberate


def test_user_agent_names_weisu_and_a_contact() -> None:
    assert REAL.user_agent.startswith("weisu/") and "contact" in REAL.user_agent


def test_delays_are_dropped_only_against_the_simulator() -> None:
    assert crawler_settings(SIMULATED, "weibo")["DOWNLOAD_DELAY"] == 0.0
    assert crawler_settings(SIMULATED, "weibo")["ROBOTSTXT_OBEY"] is True
    assert (
        crawler_settings(REAL, "weibo")["DOWNLOAD_DELAY"] == REAL.platforms["weibo"].politeness.download_delay
    )


def _throttled(retry_after: str | None, status: int = 429) -> Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Response("https://m.weibo.cn/api", status=status, headers=headers)


def _answer(middleware: RetryAfterMiddleware, response: Response) -> tuple[Response, float]:
    async def run() -> tuple[Response, float]:
        started = time.monotonic()
        answer = await middleware.process_response(Request("https://m.weibo.cn/api"), response)
        return answer, time.monotonic() - started

    return asyncio.run(run())


def test_a_429_waits_its_retry_after_before_the_retry() -> None:
    crawler = get_crawler(settings_dict={"WEISU_MAX_RETRY_AFTER": 5})
    crawler.stats.open_spider()  # type: ignore[union-attr]
    middleware = RetryAfterMiddleware.from_crawler(crawler)
    throttled = _throttled("0.3")
    answer, waited = _answer(middleware, throttled)
    assert answer is throttled  # Scrapy's retry middleware, further in, then retries it
    assert waited >= 0.3
    assert crawler.stats.get_value("weisu/retry_after_waits") == 1  # type: ignore[union-attr]


def test_a_retry_after_longer_than_the_limit_or_missing_is_not_waited() -> None:
    crawler = get_crawler(settings_dict={"WEISU_MAX_RETRY_AFTER": 1})
    crawler.stats.open_spider()  # type: ignore[union-attr]
    middleware = RetryAfterMiddleware.from_crawler(crawler)
    for response in (_throttled("3600"), _throttled(None), _throttled("1", status=200)):
        _, waited = _answer(middleware, response)
        assert waited < 0.2
    assert crawler.stats.get_value("weisu/retry_after_waits") is None  # type: ignore[union-attr]


def test_retry_after_is_read_in_seconds() -> None:
    values = ("2", "0.5", None, "Wed, 21 Oct 2015 07:28:00 GMT", "-1")
    # An HTTP date already past asks for no wait (storage.http_terms reads dates too).
    assert [retry_after_seconds(_throttled(v)) for v in values] == [2.0, 0.5, None, 0.0, None]
