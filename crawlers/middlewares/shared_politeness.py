"""Downloader middleware: a platform's download delay and concurrency hold across every worker of a
distributed crawl, not per worker: each request takes a slot from Redis before it is sent.

One Lua script decides atomically, on the Redis server's clock: a request may start when fewer than
``WEISU_SHARED_CONCURRENCY`` of the platform's requests are out (each slot is a sorted-set member;
a dead worker's slots are given back once its heartbeat expires, and expire on their own as a last
resort) and at least ``WEISU_SHARED_DELAY`` seconds have passed since the platform's last request
started, at any worker. Otherwise the script says how
long to wait, and the request waits (only it: the reactor goes on). The slot is given back when the
answer or the error comes back. Against the simulator the delay is 0, as in crawlers/config.py.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import redis
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from crawlers.frontier import PREFIX_SETTING, WORKER_ID, Keys, client_for

#: The request meta key holding the slot a request took (taken off when it is given back).
SLOT = "weisu_polite_slot"
#: How long a slot is held at most when its request never comes back and no live worker is left to
#: see its holder's heartbeat expire (crawlers.frontier.free_orphaned_slots frees it sooner).
SLOT_LEASE_SECONDS = 120.0
#: The longest single wait before asking again (a freed concurrency slot is noticed this fast).
MAX_WAIT_SECONDS = 0.5

# KEYS: slots zset, next-start key. ARGV: token, concurrency, delay ms, lease ms. → ms to wait, 0 = go.
_TAKE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 50 end
local next_start = tonumber(redis.call('GET', KEYS[2]) or '0')
if next_start > now then return next_start - now end
local delay = tonumber(ARGV[3])
redis.call('SET', KEYS[2], now + delay, 'PX', delay + 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
return 0
"""


class SharedPolitenessMiddleware:
    _tokens = itertools.count(1)

    def __init__(
        self, crawler: Crawler, client: redis.Redis, keys: Keys, delay: float, concurrency: int
    ) -> None:
        self.crawler = crawler
        self.client = client
        self.keys = keys
        self.delay_ms = int(delay * 1000)
        self.concurrency = max(1, concurrency)
        self.take = client.register_script(_TAKE_SLOT)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedPolitenessMiddleware:
        settings = crawler.settings
        if not settings.get("REDIS_URL"):
            raise NotConfigured("not a distributed crawl")
        keys = Keys(settings[PREFIX_SETTING], settings["WEISU_PLATFORM"])
        return cls(
            crawler,
            client_for(settings["REDIS_URL"]),
            keys,
            settings.getfloat("WEISU_SHARED_DELAY"),
            settings.getint("WEISU_SHARED_CONCURRENCY", 1),
        )

    async def process_request(self, request: Request) -> None:
        token = f"{WORKER_ID}|{next(self._tokens)}"
        lease_ms = int(SLOT_LEASE_SECONDS * 1000)
        while wait_ms := int(
            self.take(
                keys=[self.keys.polite_slots, self.keys.polite_next],
                args=[token, self.concurrency, self.delay_ms, lease_ms],
            )
        ):
            self.crawler.stats.inc_value("weisu/shared_politeness_waits")  # type: ignore[union-attr]
            await asyncio.sleep(min(wait_ms / 1000, MAX_WAIT_SECONDS))
        request.meta[SLOT] = token

    def _give_back(self, request: Request) -> None:
        if (token := request.meta.pop(SLOT, None)) is not None:
            self.client.zrem(self.keys.polite_slots, token)

    def process_response(self, request: Request, response: Response) -> Response:
        self._give_back(request)
        return response

    def process_exception(self, request: Request, exception: Exception) -> Any:
        self._give_back(request)
        return None
