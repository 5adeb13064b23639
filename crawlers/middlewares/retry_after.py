"""Honour Retry-After: a 429/503 answer waits the time the platform asks for before Scrapy retries it.

It sits just outside Scrapy's RetryMiddleware (550), so the response reaches it first; the wait
holds back only this request's retry. A platform asking for more than ``WEISU_MAX_RETRY_AFTER``
seconds is not waited for: the retry middleware then gives up on the request as it would anyway.
"""

from __future__ import annotations

import asyncio
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

from storage.http_terms import parse_retry_after

#: Statuses whose Retry-After header is a request to slow down (RFC 9110 §10.2.3).
WAIT_STATUSES = (429, 503)


def retry_after_seconds(response: Response) -> float | None:
    """The delay a response asks for, in seconds (storage.http_terms reads the header for every stage)."""
    return parse_retry_after(response.headers.get(b"Retry-After"))


class RetryAfterMiddleware:
    def __init__(self, crawler: Crawler, max_wait: float) -> None:
        self.crawler = crawler
        self.max_wait = max_wait

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler, crawler.settings.getfloat("WEISU_MAX_RETRY_AFTER", 60.0))

    async def process_response(self, request: Request, response: Response) -> Any:
        if response.status not in WAIT_STATUSES:
            return response
        wait = retry_after_seconds(response)
        if wait is not None and wait <= self.max_wait:
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("weisu/retry_after_waits")
            await asyncio.sleep(wait)
        return response
