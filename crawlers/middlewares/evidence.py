"""Spider middleware: stamp every post item with the raw response body it was parsed from (evidence).

Spiders stay unaware of it: whatever item leaves a callback gets ``item.evidence``, one shared
``RawBody`` per response (the detail page for listing+detail boards, else the listing or API page).
The store pipeline writes the body once per distinct SHA-256 beside the posts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from scrapy.crawler import Crawler
from scrapy.http import Response

from crawlers.items import PostItem, RawBody

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024


class EvidenceMiddleware:
    def __init__(self, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.max_body_bytes = max_body_bytes

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> EvidenceMiddleware:
        return cls(crawler.settings.getint("WEISU_MAX_RAW_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))

    def raw_body(self, response: Response) -> RawBody:
        content_type = response.headers.get(b"Content-Type")
        return RawBody.of(
            url=response.url,
            status=response.status,
            content_type=content_type.decode("latin-1")[:200] if content_type else None,
            fetched_at=datetime.now(UTC),
            body=response.body,
            limit=self.max_body_bytes,
        )

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterable[Any]:
        raw: RawBody | None = None  # built on the first item only: most responses yield requests alone
        for element in result:
            if isinstance(element, PostItem) and element.evidence is None:
                raw = raw or self.raw_body(response)
                element.evidence = raw
            yield element

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        raw: RawBody | None = None
        async for element in result:
            if isinstance(element, PostItem) and element.evidence is None:
                raw = raw or self.raw_body(response)
                element.evidence = raw
            yield element
